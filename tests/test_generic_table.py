"""The generic tabular benchmark: any CSV of decisions and metrics is a space and an evaluator."""

import csv
from collections import Counter

import numpy as np
import pytest

from archsearch.components import build_components
from archsearch.errors import DataError
from archsearch.evaluate import TableEvaluator
from archsearch.space import Decision, SearchSpace, make_space
from archsearch.space.nb201 import EDGES, edge_label
from archsearch.strategy import make_strategy
from archsearch.study import Study
from archsearch.tables import TableSpace, load_nb201_table

HEADER = ["depth", "width", "act", "val_acc", "test_acc", "latency_ms"]
ROWS = [  # 7 of the 2 x 3 x 2 = 12 combinations; (2, 32, relu) failed to train
    [1, 16, "relu", 80.5, 80.1, 1.25],
    [1, 16, "gelu", 81.0, 80.4, 1.5],
    [1, 32, "relu", 83.5, 82.9, 2.0],
    [1, 64, "gelu", 85.25, 84.0, 3.75],
    [2, 16, "relu", 82.0, 81.6, 2.5],
    [2, 32, "relu", "nan", "nan", 4.0],
    [2, 64, "gelu", 88.0, 87.5, 7.5],
]


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def table(tmp_path):
    return write(tmp_path / "toy.csv", HEADER, ROWS)


def make(table, **options):
    return TableSpace(str(table), objective="val_acc", reported="test_acc", **options)


# ---------------------------------------------------------------------- the space
def test_decisions_and_typed_choices_are_inferred_from_the_table(table):
    space = make(table, metrics=["latency_ms"])
    assert space.decisions == (
        Decision("depth", (1, 2)),
        Decision("width", (16, 32, 64)),
        Decision("act", ("gelu", "relu")),
    )
    arch = space.sample(np.random.default_rng(0))
    assert isinstance(arch["depth"], int) and isinstance(arch["act"], str)
    assert space.size() == 7 and len(list(space.enumerate())) == 7


def test_only_rows_are_sampled_uniformly_and_missing_ones_are_invalid(table):
    space = make(table, decisions=["depth", "width", "act"])
    rng = np.random.default_rng(0)
    counts = Counter(space.sample(rng) for _ in range(7000))
    assert len(counts) == 7 and min(counts.values()) > 850  # 1000 each if uniform
    missing = {"depth": 2, "width": 64, "act": "relu"}
    assert missing not in space
    assert all(space.is_valid(a) for a in counts)


def test_neighbours_and_mutations_stay_on_rows_one_decision_away(table):
    space = make(table, decisions=["depth", "width", "act"])
    arch = space.make({"depth": 1, "width": 16, "act": "relu"})
    expected = {
        space.make({"depth": 1, "width": 16, "act": "gelu"}),
        space.make({"depth": 1, "width": 32, "act": "relu"}),
        space.make({"depth": 2, "width": 16, "act": "relu"}),
    }
    assert set(space.neighbours(arch)) == expected
    rng = np.random.default_rng(0)
    assert {space.mutate(arch, rng) for _ in range(100)} == expected


def test_declared_choices_keep_their_order_and_restrict_the_space(table):
    space = make(table, decisions={"width": ["64", 16], "act": ["relu", "gelu"], "depth": [1]})
    assert space.decision("width").choices == (64, 16)  # "64" read as the column's ints
    assert space.decision("act").choices == ("relu", "gelu")
    assert space.size() == 3  # rows of depth 1 with width 16 or 64


def test_an_unnamed_metric_column_is_not_taken_for_a_decision(table):
    assert make(table).decisions == make(table, metrics=["latency_ms"]).decisions


def test_the_space_config_round_trips(table):
    declared = {"depth": [2, 1], "width": [16, 32, 64], "act": ["relu", "gelu"]}
    for space in (make(table, metrics=["latency_ms"]), make(table, decisions=declared)):
        again = make_space(**space.config())
        assert again.decisions == space.decisions
        assert list(again.enumerate()) == list(space.enumerate())


# ------------------------------------------------------------------ the evaluator
def test_the_evaluator_looks_up_objective_reported_and_other_metrics(table):
    space = make(table, metrics=["latency_ms"])
    evaluator = TableEvaluator(str(table), objective="val_acc", reported="test_acc")
    evaluator.check_space(space)
    result = evaluator.evaluate(space.make({"depth": 2, "width": 64, "act": "gelu"}), space)
    assert (result.values["val_acc"], result.values["test_acc"]) == (88.0, 87.5)
    assert result.values["latency_ms"] == 7.5 and result.values["table_row"] == 6


def test_a_study_records_nan_rows_as_failed_and_resumes_from_its_config(table, tmp_path):
    config = {
        "space": {"name": "table", "table": str(table), "objective": "val_acc",
                  "reported": "test_acc", "metrics": ["latency_ms"]},
        "strategy": {"name": "random"},
        "evaluator": {"name": "table", "table": str(table), "objective": "val_acc",
                      "reported": "test_acc"},
        "seed": 0,
        "budget": {"evaluations": 7, "seconds": None},
    }  # fmt: skip
    study = Study.from_config(config, tmp_path / "study")
    study.optimize(4)
    study.close()
    resumed = Study.from_config(config, tmp_path / "study")
    resumed.optimize()
    trials = resumed.trials
    assert len({t.arch for t in trials}) == 7  # every row once
    assert [t.status for t in trials].count("failed") == 1
    assert resumed.best.objective == 88.0 and resumed.best.reported == 87.5


def test_architectures_of_another_space_without_a_row_fail_without_stopping_the_study(table):
    space = SearchSpace([Decision("depth", (1, 2)), Decision("width", (16, 32, 64))])
    rows = [[d, w, v] for d, w, v in [(1, 16, 80.0), (2, 64, 90.0)]]
    path = write(table.parent / "two.csv", ["depth", "width", "val"], rows)
    evaluator = TableEvaluator(str(path), objective="val")
    study = Study(space, make_strategy("random", space, seed=0), evaluator)
    study.optimize(6)  # all six assignments, four of them missing from the table
    statuses = Counter(t.status for t in study.trials)
    assert statuses == {"failed": 4, "complete": 2}
    assert any("no row in table" in t.error for t in study.trials if t.status == "failed")


# ------------------------------------------------------------------ bad tables
def test_bad_tables_fail_with_a_data_error_naming_the_problem(table, tmp_path):
    with pytest.raises(DataError, match="no column 'accuracy'; columns: \\['depth'"):
        TableEvaluator(str(table), objective="accuracy")
    bad_value = write(tmp_path / "bad.csv", HEADER, [*ROWS[:2], [2, 16, "relu", "n/a", 1, 1]])
    with pytest.raises(DataError, match="line 4: metric column 'val_acc' holds 'n/a'"):
        TableEvaluator(str(bad_value), objective="val_acc")
    duplicate = write(tmp_path / "dup.csv", HEADER, [*ROWS, ROWS[2]])
    with pytest.raises(DataError, match="lines 4 and 9 repeat the decisions"):
        make(duplicate, metrics=["latency_ms"])
    with pytest.raises(DataError, match="table not found"):
        TableEvaluator(str(tmp_path / "nowhere.csv"), objective="val_acc")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="cannot read table"):
        TableEvaluator(str(tmp_path / "binary.csv"), objective="val_acc")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("depth,val\n1,80\n2\n")
    with pytest.raises(DataError, match="line 3: 1 fields, header has 2"):
        TableEvaluator(str(ragged), objective="val")


def test_a_table_evaluator_refuses_a_space_whose_decisions_are_not_columns(table):
    evaluator = TableEvaluator(str(table), objective="val_acc")
    with pytest.raises(DataError, match="decisions \\['kernel'\\] that are not columns"):
        evaluator.check_space(SearchSpace([Decision("kernel", (3, 5))]))


# -------------------------------------------------------- NAS-Bench-201 as a table
@pytest.fixture(scope="module")
def nb201_as_table(nb201_csv, tmp_path_factory):
    """The NAS-Bench-201 table rewritten as one column per edge: a 15,625-row generic table."""
    nb201 = load_nb201_table(nb201_csv)
    labels = [edge_label(j, i) for j, i in EDGES]
    rows = []
    for index in range(len(nb201)):
        arch = nb201.space.from_index(index)
        rows.append([arch[label] for label in labels] + [
            nb201.columns["cifar10_valid"][index], nb201.columns["cifar10_test"][index]
        ])  # fmt: skip
    path = tmp_path_factory.mktemp("nb201") / "nb201_edges.csv"
    return write(path, [*labels, "valid", "test"], rows)


@pytest.mark.slow
def test_strategies_search_a_generic_table_and_beat_random_search(nb201_as_table):
    config = {
        "space": {"name": "table", "table": str(nb201_as_table), "objective": "valid",
                  "reported": "test"},
        "evaluator": {"name": "table", "table": str(nb201_as_table), "objective": "valid",
                      "reported": "test"},
        "budget": {"evaluations": 100, "seconds": None},
    }  # fmt: skip
    space, _, _ = build_components({**config, "strategy": {"name": "random"}})
    assert space.size() == 15_625

    def mean_test_accuracy(name):
        finals = []
        for seed in range(8):
            study = Study.from_config({**config, "strategy": {"name": name}, "seed": seed})
            study.optimize()
            assert all(space.is_valid(space.from_json(t.arch_json)) for t in study.trials)
            finals.append(study.best.reported)
        return np.mean(finals)

    random = mean_test_accuracy("random")
    for name in ("evolution", "reinforce"):
        assert mean_test_accuracy(name) > random + 0.15, name


@pytest.fixture(scope="module")
def sparse_table(nb201_as_table):
    """209 of NAS-Bench-201's 15,625 rows: most rows have no row one decision away."""
    with open(nb201_as_table) as f:
        rows = list(csv.reader(f))
    return write(nb201_as_table.parent / "sparse.csv", rows[0], rows[1::75])


def sparse_study(name, table, budget):
    space = TableSpace(str(table), objective="valid", reported="test")
    evaluator = TableEvaluator(str(table), objective="valid", reported="test")
    options = {"min_fidelity": 1, "max_fidelity": 1} if name == "bohb" else {}
    study = Study(space, make_strategy(name, space, seed=0, **options), evaluator)
    study.optimize(budget)
    return [space.from_json(t.arch_json) for t in study.trials]  # from_json checks the row


@pytest.mark.parametrize("name", ["reinforce", "bohb", "evolution", "local"])
def test_strategies_propose_only_rows_of_a_sparse_table(name, sparse_table):
    assert len(sparse_study(name, sparse_table, 60)) == 60


@pytest.mark.parametrize("name", ["reinforce", "bohb"])
@pytest.mark.slow
def test_model_based_strategies_never_repeat_a_row_of_a_sparse_table(name, sparse_table):
    archs = sparse_study(name, sparse_table, 150)
    assert len(set(archs)) == 150


def test_mutations_in_a_sparse_table_move_to_the_nearest_rows(sparse_table):
    space = TableSpace(str(sparse_table), objective="valid", reported="test")
    rng = np.random.default_rng(0)
    lonely = next(a for a in space.enumerate() if not space.neighbours(a))
    child = space.mutate(lonely, rng)
    distance = sum(lonely[k] != child[k] for k in lonely)
    assert child != lonely and space.is_valid(child)
    assert all(
        sum(lonely[k] != a[k] for k in lonely) >= distance for a in space.enumerate() if a != lonely
    )
