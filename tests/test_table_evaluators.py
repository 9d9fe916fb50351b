"""Table evaluators look up through the table protocol and report every numeric column."""

import numpy as np
import pytest

from archsearch.components import build_evaluator
from archsearch.evaluate.table import MissingRowError, looked_up
from archsearch.space import NB201Space
from archsearch.tables.nb201 import load_nb201_table


def test_nb201_table_reports_its_values_and_every_other_column(nb201_csv):
    evaluator = build_evaluator({"name": "nb201-table", "table": str(nb201_csv),
                                 "dataset": "cifar100"})  # fmt: skip
    space = NB201Space()
    arch = space.from_index(4321)
    values = evaluator.evaluate(arch, space).values
    table = load_nb201_table(nb201_csv)
    assert list(values)[:2] == ["cifar100_valid", "cifar100_test"]
    assert evaluator.objective_name == "cifar100_valid"
    assert evaluator.reported_name == "cifar100_test"
    assert values["nb201_index"] == 4321
    assert set(values) == {*table.metric_names, "params", "flops", "nb201_index"}
    for name in table.metric_names:
        assert np.isnan(values[name]) or values[name] == table.lookup(arch)[name]


def test_a_row_the_table_lacks_is_a_failed_candidate_not_a_configuration_error():
    from archsearch.tables.nasbench_graph import load_nasbench_graph

    table = load_nasbench_graph("cora")
    with pytest.raises(MissingRowError, match="has no row in table"):
        looked_up(table, -1)  # a class hash the benchmark does not hold


def test_nasbench_graph_reports_its_columns_under_the_dataset_names():
    evaluator = build_evaluator({"name": "nasbench-graph-table", "dataset": "cora"})
    space = evaluator.table.space
    arch = space.sample(np.random.default_rng(0))
    values = evaluator.evaluate(arch, space).values
    assert set(values) == {"cora_valid", "cora_test", "latency", "params", "benchmark_hash"}
    row = evaluator.table.row(arch)
    assert values["cora_valid"] == evaluator.table.valid[row]
