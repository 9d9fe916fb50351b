"""NAS-Bench-Graph: the GNN cell space and its nine tables, read from the installed package."""

import pickle

import numpy as np
import pytest

from archsearch.errors import DataError
from archsearch.evaluate import NASBenchGraphEvaluator
from archsearch.space import make_space
from archsearch.study import Study
from archsearch.tables.nasbench_graph import (
    DATASETS,
    NASBenchGraphSpace,
    load_nasbench_graph,
)

nas_bench_graph = pytest.importorskip("nas_bench_graph")


@pytest.mark.slow
def test_the_package_ships_all_nine_tables_and_they_load_unchanged():
    for dataset in DATASETS:
        table = load_nasbench_graph(dataset)
        reference = nas_bench_graph.light_read(dataset)  # the package's own (plain) pickle load
        assert len(table) == (2_021 if dataset == "proteins" else 26_206)
        assert set(table.rows) == set(reference)
        key = next(iter(reference))
        r = table.row(key)
        assert table.valid[r] == reference[key]["valid_perf"]
        assert table.test[r] == reference[key]["perf"]
        assert table.latency[r] == reference[key]["latency"]
        assert table.params[r] == reference[key]["para"]


@pytest.mark.parametrize("dataset, classes", [("cora", 26_206), ("proteins", 2_021)])
@pytest.mark.slow
def test_every_cell_of_the_space_has_a_row_and_the_rows_are_exactly_the_space(dataset, classes):
    space = NASBenchGraphSpace(dataset)
    table = load_nasbench_graph(dataset)
    hashes = set()
    count = 0
    for arch in space.enumerate():
        hashes.add(space.benchmark_hash(arch))
        count += 1
    assert count == space.size()  # 24 wirings x (ops**4 - 1 all-skip cells)
    assert hashes == set(table.rows) and len(hashes) == classes


def test_equivalent_cells_share_their_class_and_their_results():
    space = NASBenchGraphSpace()
    evaluator = NASBenchGraphEvaluator("citeseer")
    # gcn feeds gin (which feeds fc) and cheb: the order nodes are listed in does not matter
    a = space.from_link_and_ops([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])
    b = space.from_link_and_ops([0, 1, 1, 3], ["gcn", "cheb", "gin", "fc"])
    assert a != b and space.isomorphism_hash(a) == space.isomorphism_hash(b)
    assert evaluator.evaluate(a, space).values == evaluator.evaluate(b, space).values
    assert space.link_and_ops(a) == ([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])


def test_all_skip_cells_are_not_in_the_space():
    space = NASBenchGraphSpace()
    skip = {"node1.op": "skip", "node2.op": "skip", "node3.op": "skip", "node4.op": "skip"}
    assert {**skip, "node2.input": 1, "node3.input": 0, "node4.input": 3} not in space
    rng = np.random.default_rng(0)
    assert all(space.is_valid(space.sample(rng)) for _ in range(200))


def test_the_evaluator_reports_validation_test_latency_and_parameters():
    space = make_space("nasbench-graph", dataset="cora")
    evaluator = NASBenchGraphEvaluator("cora")
    arch = space.sample(np.random.default_rng(1))
    link, ops = space.link_and_ops(arch)
    expected = nas_bench_graph.light_read("cora")[nas_bench_graph.Arch(link, ops).valid_hash()]
    result = evaluator.evaluate(arch, space)
    assert result.values["cora_valid"] == expected["valid_perf"]
    assert result.values["cora_test"] == expected["perf"]
    assert result.values["latency"] == expected["latency"]
    assert result.values["params"] == expected["para"]
    assert (evaluator.objective_name, evaluator.reported_name) == ("cora_valid", "cora_test")


def test_proteins_needs_its_own_operations():
    evaluator = NASBenchGraphEvaluator("proteins")
    with pytest.raises(DataError, match="use space nasbench-graph with dataset='proteins'"):
        evaluator.check_space(NASBenchGraphSpace("cora"))
    evaluator.check_space(NASBenchGraphSpace("proteins"))
    with pytest.raises(DataError, match="unknown NAS-Bench-Graph dataset 'mnist'; datasets: "):
        NASBenchGraphSpace("mnist")


def test_a_tampered_table_cannot_run_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "cora.bench"
    path.write_bytes(pickle.dumps({0: Exploit()}))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_nasbench_graph("cora", path)


def study_config(strategy, seed, dataset="cora", budget=50):
    return {
        "space": {"name": "nasbench-graph", "dataset": dataset},
        "strategy": {"name": strategy},
        "evaluator": {"name": "nasbench-graph-table", "dataset": dataset},
        "seed": seed,
        "budget": {"evaluations": budget, "seconds": None},
    }


def test_searches_run_through_studies_and_beat_random_search(tmp_path):
    table = load_nasbench_graph("cora")
    test_of = {h: table.test[r] for h, r in table.rows.items()}

    def mean_test(strategy):
        finals = []
        for seed in range(10):
            study = Study.from_config(study_config(strategy, seed))
            study.optimize()
            finals.append(study.best.reported)
            assert study.best.reported == test_of[int(study.best.values["benchmark_hash"])]
        return np.mean(finals)

    random = mean_test("random")
    assert mean_test("evolution") > random and mean_test("reinforce") > random
    part = Study.from_config(study_config("bohb", 0, "proteins", 30), tmp_path / "s")
    part.optimize(12)
    part.close()
    resumed = Study.from_config(study_config("bohb", 0, "proteins", 30), tmp_path / "s")
    resumed.optimize()
    assert resumed.n_finished == 30
