"""Values known without evaluating: NAS-Bench-201's packaged costs and each evaluator's
``cheap_values``, which must equal what its evaluation reports."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr
from torch import nn

from archsearch.components import build_evaluator
from archsearch.errors import ArchsearchError, DataError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.evaluate.composite import CompositeEvaluator
from archsearch.evaluate.cost import CostEvaluator
from archsearch.hardware import count_flops, count_params
from archsearch.space import NB201Space
from archsearch.space.base import Decision, SearchSpace
from archsearch.space.table import TableSpace
from archsearch.tables.nb201 import (
    COSTS,
    NETWORKS,
    SIZE,
    load_nb201_table,
    nb201_costs,
    nb201_hardware,
)

REFERENCE_COSTS = Path(__file__).parents[1].parent / "shared/data/nb201/reference_costs.csv"
ARCH = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def built(index: int, dataset: str = "cifar10") -> tuple[int, int]:
    """Parameters and FLOPs of the benchmark network of ``index``, counted on a fresh build."""
    space = NB201Space()
    shape, classes = NETWORKS[dataset]
    model = space.build(space.from_index(index), shape, classes)
    return count_params(model), count_flops(model, shape)


def reference_rows() -> list[dict[str, str]]:
    with REFERENCE_COSTS.open() as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- the packaged costs
def test_the_packaged_costs_hold_one_positive_integer_row_per_architecture():
    costs = nb201_costs()
    assert set(costs) == {"params", "flops"}
    for column in costs.values():
        assert column.shape == (SIZE,) and column.dtype == np.int64
        assert (column > 0).all() and not column.flags.writeable
    # parameters sit in the convolutions alone: one count per number of 1x1 and 3x3 edges
    assert len(np.unique(costs["params"])) == 28
    assert len(np.unique(costs["flops"])) == 28


@pytest.mark.slow
def test_the_packaged_costs_are_the_builders_on_a_random_sample():
    costs = nb201_costs()
    for index in np.random.default_rng(12).choice(SIZE, 20, replace=False):
        assert built(int(index)) == (costs["params"][index], costs["flops"][index]), index


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["cifar100", "imagenet16"])
def test_other_datasets_costs_are_those_of_their_own_networks(dataset):
    costs = nb201_costs(dataset)
    for index in (0, 5115, 15624):
        assert built(index, dataset) == (costs["params"][index], costs["flops"][index])


def test_parameters_match_the_published_counts_exactly():
    space, costs = NB201Space(), nb201_costs()
    for row in reference_rows():
        index = space.index(space.from_string(row["arch"]))
        assert f"{costs['params'][index] / 1e6:.6f}" == row["params_millions"], row["arch"]


def test_flops_are_the_published_ones_less_what_the_benchmark_counts_besides_multiply_adds():
    """The benchmark counts one FLOP per multiply-add and, besides, 9 per output of each 3x3
    average pool, 3 per output of each cell convolution (its ReLU and BatchNorm) and a
    constant for the skeleton: solved from the eight published figures, and consistent on
    all of them (4 unknowns, 8 equations), so our counts are exact, not only in rank."""
    space, costs = NB201Space(), nb201_costs()
    positions = 5 * (16 * 32 * 32 + 32 * 16 * 16 + 64 * 8 * 8)  # C*H*W over the 15 cells
    ours, published = [], []
    for row in reference_rows():
        arch = space.from_string(row["arch"])
        ops = list(arch.values())
        pools = ops.count("avg_pool_3x3")
        convolutions = ops.count("nor_conv_1x1") + ops.count("nor_conv_3x3")
        multiply_adds = int(costs["flops"][space.index(arch)]) // 2
        extra = 9 * positions * pools + 3 * positions * convolutions + 160_832
        assert multiply_adds + extra == round(float(row["flops_millions"]) * 1e6), row["arch"]
        ours.append(multiply_adds)
        published.append(float(row["flops_millions"]))
    assert spearmanr(ours, published).statistic == 1.0


# -------------------------------------------------------------------- nb201-table
def nb201_table(nb201_csv, dataset="cifar10"):
    return build_evaluator({"name": "nb201-table", "table": str(nb201_csv), "dataset": dataset})


def test_nb201_table_reports_the_networks_costs_and_knows_them_before_evaluating(nb201_csv):
    evaluator, space = nb201_table(nb201_csv), NB201Space()
    arch = space.from_string(ARCH)
    values = evaluator.evaluate(arch, space).values
    assert values["params"] == 316_346  # reference_costs.csv: 0.316346 million
    index = space.index(arch)
    assert values["flops"] == nb201_costs()["flops"][index]
    measured = {name: float(column[index]) for name, column in nb201_hardware().items()}
    assert evaluator.cheap_values(arch, space) == {
        "params": values["params"],
        "flops": values["flops"],
        **measured,  # on CIFAR-10, the network's measured latency and memory
    }
    assert all(values[name] == value for name, value in measured.items())
    assert {"params", "flops"} <= evaluator.value_names(space) == set(values)


def test_nb201_table_costs_are_those_of_the_datasets_network(nb201_csv):
    space = NB201Space()
    arch = space.from_string(ARCH)
    cifar10 = nb201_table(nb201_csv).cheap_values(arch, space)
    cifar100 = nb201_table(nb201_csv, "cifar100").cheap_values(arch, space)
    imagenet = nb201_table(nb201_csv, "imagenet16").evaluate(arch, space).values
    assert cifar100["params"] == cifar10["params"] + 65 * 90  # Linear(64, 100), not (64, 10)
    index = space.index(arch)
    assert imagenet["flops"] == nb201_costs("imagenet16")["flops"][index] < cifar10["flops"] / 3


@pytest.mark.slow
def test_a_nb201_table_with_its_own_cost_column_reports_that_column(nb201_csv, tmp_path):
    with open(nb201_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    path = tmp_path / "with_params.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, [*rows[0], "params"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "params": int(row["index"]) + 0.5})
    evaluator, space = nb201_table(path), NB201Space()
    arch = space.from_index(777)
    values = evaluator.evaluate(arch, space).values
    assert values["params"] == 777.5  # the table's column wins
    assert values["flops"] == nb201_costs()["flops"][777]  # the one it lacks is packaged
    cheap = evaluator.cheap_values(arch, space)
    assert {name: cheap[name] for name in COSTS} == {"params": 777.5, "flops": values["flops"]}
    assert load_nb201_table(path).column("params")[777] == 777.5


# ---------------------------------------------------------- the other evaluators
def test_nasbench_graph_knows_latency_and_params_before_evaluating():
    pytest.importorskip("nas_bench_graph")
    evaluator = build_evaluator({"name": "nasbench-graph-table", "dataset": "cora"})
    space = evaluator.table.space
    for arch in space.distinct_samples(np.random.default_rng(1), 5):
        values = evaluator.evaluate(arch, space).values
        cheap = evaluator.cheap_values(arch, space)
        assert cheap == {"latency": values["latency"], "params": values["params"]}


def test_the_cost_evaluators_cheap_values_are_its_whole_evaluation():
    space, evaluator = NB201Space(channels=4, cells_per_stage=1), CostEvaluator()
    arch = space.from_string(ARCH)
    assert evaluator.cheap_values(arch, space) == evaluator.evaluate(arch, space, seed=3).values


class Known(Evaluator):
    """Reports ``values`` and knows ``cheap`` of them without evaluating."""

    name = "known"

    def __init__(self, values, cheap, objective="x"):
        self.values, self.cheap, self.objective_name = values, cheap, objective

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        return EvalResult(dict(self.values))

    def cheap_values(self, arch, space):
        return {name: self.values[name] for name in self.cheap}


def test_a_composites_cheap_values_are_its_parts_merged_as_its_results_are(nb201_csv):
    space = NB201Space()
    arch = space.from_string(ARCH)
    table = nb201_table(nb201_csv)
    energy = Known({"energy_mj": 2.5, "accuracy": 90.0}, ["energy_mj"], objective="accuracy")
    composite = CompositeEvaluator([table, energy])
    values = composite.evaluate(arch, space).values
    cheap = composite.cheap_values(arch, space)
    assert cheap == {name: values[name] for name in [*table.cheap_values(arch, space), "energy_mj"]}
    same = CompositeEvaluator([table, Known({"params": 316_346.0}, ["params"])])
    assert same.cheap_values(arch, space) == table.cheap_values(arch, space)
    clash = CompositeEvaluator([table, Known({"params": 1.0}, ["params"])])
    with pytest.raises(ArchsearchError, match="part 0 \\(nb201-table\\) reports params"):
        clash.cheap_values(arch, space)


def test_a_composite_of_evaluators_that_know_nothing_beforehand_knows_nothing():
    space = NB201Space()
    parts = [Known({"a": 1.0}, [], objective="a"), Known({"b": 2.0}, [], objective="b")]
    assert CompositeEvaluator(parts).cheap_values(space.from_string(ARCH), space) == {}


# --------------------------------------------------------------- the generic table
@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text(
        "depth,width,val_acc,test_acc,params,device\n"
        "1,16,80.5,80.1,1000,cpu\n"
        "1,32,83.5,nan,2000,cpu\n"
        "2,16,82.0,81.6,nan,gpu\n"
    )
    return path


def toy_space(path):
    return TableSpace(str(path), decisions=["depth", "width"], objective="val_acc")


def table_evaluator(path, **options):
    return build_evaluator({"name": "table", "table": str(path), "objective": "val_acc",
                            "reported": "test_acc", **options})  # fmt: skip


def test_a_generic_table_knows_nothing_beforehand_unless_told(toy):
    space = toy_space(toy)
    evaluator = table_evaluator(toy)
    assert all(evaluator.cheap_values(arch, space) == {} for arch in space.enumerate())


def test_a_generic_tables_cheap_columns_are_what_evaluating_reports(toy):
    space = toy_space(toy)
    evaluator = table_evaluator(toy, cheap_columns=["params", "test_acc"])
    evaluator.check_space(space)
    for arch in space.enumerate():
        values = evaluator.evaluate(arch, space).values
        cheap = evaluator.cheap_values(arch, space)
        expected = {n: values[n] for n in ("params", "test_acc") if n in values}
        assert list(cheap) == list(expected)
        assert np.array_equal(list(cheap.values()), list(expected.values()), equal_nan=True)
    failed_count = evaluator.cheap_values(space.make({"depth": 2, "width": 16}), space)
    assert math.isnan(failed_count["params"])  # nan stays nan, as evaluating reports it
    untested = evaluator.cheap_values(space.make({"depth": 1, "width": 32}), space)
    assert "test_acc" not in untested  # a nan reported value is left out, as evaluating does
    again = build_evaluator(evaluator.config())
    assert again.cheap_columns == ("params", "test_acc")


def test_an_architecture_without_a_row_has_no_cheap_values(toy):
    class Grid(SearchSpace):
        name = "grid"

        def __init__(self):
            super().__init__([Decision("depth", (1, 2)), Decision("width", (16, 32))])

    space = Grid()
    evaluator = table_evaluator(toy, cheap_columns=["params"])
    assert evaluator.cheap_values(space.make({"depth": 2, "width": 32}), space) == {}
    assert evaluator.cheap_values(space.make({"depth": 1, "width": 32}), space) == {
        "params": 2000.0
    }


@pytest.mark.parametrize(
    "cheap, message",
    [
        (["latency_ms"], "cheap column 'latency_ms' is not a column of .*columns: \\['depth'"),
        (["device"], "metric column 'device' holds 'cpu', not a number"),
        ("params", "cheap_columns must be a list of column names, got 'params'"),
        ([3], "cheap column 3 is not a column"),
    ],
)
def test_a_bad_cheap_column_is_refused_by_name(toy, cheap, message):
    with pytest.raises(ArchsearchError, match=message):
        table_evaluator(toy, cheap_columns=cheap)


def test_a_decision_is_not_a_cheap_column(toy):
    space = toy_space(toy)
    with pytest.raises(DataError, match="\\['width'\\] are metrics, not decisions"):
        table_evaluator(toy, cheap_columns=["width"]).check_space(space)


# ---------------------------------------------------------------- the train evaluator
class Tiny(SearchSpace):
    """One hidden layer of 4 or 8 units."""

    name = "tiny"

    def __init__(self):
        super().__init__([Decision("hidden", (4, 8))])

    def build(self, arch, input_shape, num_classes):
        hidden = int(arch["hidden"])
        return nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )  # fmt: skip


def test_the_train_evaluator_knows_its_networks_counts_before_training():
    from archsearch.data import load_dataset
    from archsearch.evaluate.train import TrainingEvaluator

    evaluator = TrainingEvaluator(data=load_dataset("digits"), epochs=1, valid_size=100)
    space = Tiny()
    arch = space.make({"hidden": 8})
    values = evaluator.evaluate(arch, space, seed=4).values
    cheap = evaluator.cheap_values(arch, space)
    assert cheap == {"params": values["params"], "flops": values["flops"]}
    assert cheap["params"] == 64 * 8 + 8 + 8 * 10 + 10
