"""The Fashion-MNIST table: loading, validation, and the builder's resume logic."""

import json
from pathlib import Path

import numpy as np
import pytest

from archsearch.errors import DataError
from archsearch.space import NB201Space
from archsearch.tables.fmnist import COLUMNS, load_fmnist_table

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "data" / "fmnist_nb201.csv"


@pytest.fixture
def one_torch_thread():
    """Tiny networks train fastest on one thread; on a busy machine, threads only contend."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _builder():
    from archsearch.tables import build

    return build


def _row(index: int, valid: float = 80.0, recipe: str = '{"name":"t"}') -> list[str]:
    space = NB201Space()
    arch = space.to_string(space.from_index(index))
    return [str(index), arch, str(valid), str(valid - 1), "1000", "20000", "1.5", recipe, "7"]


def _write(path: Path, rows: list[list[str]], header=COLUMNS) -> Path:
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_a_valid_table_loads_into_aligned_columns(tmp_path):
    table = load_fmnist_table(_write(tmp_path / "t.csv", [_row(5, 70.0), _row(9, 90.0)]))
    space = NB201Space()
    assert len(table) == 2
    assert list(table.indices) == [5, 9]
    assert table.column("fmnist_valid").tolist() == [70.0, 90.0]
    assert table.query(space.from_index(9), "fmnist_test") == 89.0
    assert space.from_index(5) in table and space.from_index(6) not in table
    assert table.recipe == {"name": "t"}
    assert table.architectures() == [space.from_index(5), space.from_index(9)]


@pytest.mark.parametrize(
    "rows, message",
    [
        ([_row(5), _row(5)], "repeated"),
        ([_row(5), _row(9, recipe='{"name":"other"}')], "recipe differs"),
        ([_row(5, valid=101.0)], "out of range"),
        ([_row(5, valid=float("nan"))], "out of range"),
        ([[*_row(5)[:1], _row(9)[1], *_row(5)[2:]]], "not that of"),
        ([["5", "|bogus~0|", *_row(5)[2:]]], "line 2"),
        ([_row(5)[:-2]], "wrong number of fields"),
        ([], "no rows"),
    ],
)
def test_corrupt_tables_raise_data_error_naming_the_problem(tmp_path, rows, message):
    with pytest.raises(DataError, match=message):
        load_fmnist_table(_write(tmp_path / "t.csv", rows))


def test_missing_columns_and_missing_files_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="missing columns"):
        load_fmnist_table(_write(tmp_path / "t.csv", [_row(5)[:-1]], header=COLUMNS[:-1]))
    with pytest.raises(DataError, match="not found"):
        load_fmnist_table(tmp_path / "absent.csv")


def test_the_sample_is_a_fixed_prefix_of_one_seeded_permutation():
    builder = _builder()
    first = builder.sample_indices(300)
    assert first == builder.sample_indices(300)
    assert builder.sample_indices(500)[:300] == first
    assert len(set(first)) == 300 and all(0 <= i < 5**6 for i in first)


COMMITTED_TABLES = {  # table -> seed offset
    COMMITTED: 0,
    ROOT / "data" / "fmnist_nb201_seed1.csv": 1,
    ROOT / "data" / "fmnist_nb201_seed2.csv": 2,
    ROOT / "data" / "fmnist_nb201_long.csv": 0,
}


@pytest.mark.parametrize("path", [p for p in COMMITTED_TABLES if p.is_file()], ids=lambda p: p.stem)
def test_the_committed_tables_are_valid_and_follow_the_seeded_sample(path):
    table = load_fmnist_table(path)
    builder = _builder()
    assert list(table.seeds) == [i + COMMITTED_TABLES[path] for i in table.indices]
    # rows come from the first 300 positions of the seeded permutation (any order: builders
    # may fill disjoint ranges at once)
    assert set(table.indices) <= set(builder.sample_indices(max(300, len(table))))
    assert json.loads(builder.recipe_json(builder.RECIPES[table.recipe["name"]])) == table.recipe
    assert np.ptp(table.column("fmnist_valid")) > 10  # a meaningful spread


TINY = {
    "name": "tiny-test",
    "space": {"name": "nb201", "channels": 2, "cells_per_stage": 1},
    "evaluator": {
        "name": "train",
        "dataset": "digits",
        "epochs": 1,
        "batch_size": 32,
        "lr": 0.05,
        "train_size": 64,
        "valid_size": 32,
        "test_size": 32,
        "device": "cpu",
    },
}


def test_the_builder_resumes_skips_done_rows_and_repairs_a_torn_last_line(
    tmp_path, one_torch_thread
):
    builder = _builder()
    out = tmp_path / "table.csv"
    quiet = lambda line: None  # noqa: E731
    assert builder.build_table(out, TINY, size=3, limit=2, log=quiet) == 2
    first = out.read_text()
    # a run killed in mid-write leaves a partial line: it is dropped, then the rest is trained
    with open(out, "a") as f:
        f.write("123,|nor_conv")
    assert builder.build_table(out, TINY, size=3, log=quiet) == 1
    assert out.read_text().startswith(first)
    assert builder.build_table(out, TINY, size=3, log=quiet) == 0  # nothing left to do
    table = load_fmnist_table(out)
    assert list(table.indices) == builder.sample_indices(3)
    assert list(table.seeds) == builder.sample_indices(3)  # seed = benchmark index
    other = {**TINY, "name": "another"}
    with pytest.raises(DataError, match="another recipe"):
        builder.build_table(out, other, size=3, log=quiet)
    # a replicate table trains the same cells with seed = index + offset, in its own file
    replicate = tmp_path / "replicate.csv"
    assert builder.build_table(replicate, TINY, size=2, seed_offset=1, log=quiet) == 2
    assert list(load_fmnist_table(replicate).seeds) == [i + 1 for i in builder.sample_indices(2)]
    with pytest.raises(DataError, match="seed offset 0, not 1"):
        builder.build_table(out, TINY, size=3, seed_offset=1, log=quiet)


def test_a_trained_row_has_the_committed_tables_format(one_torch_thread):
    """One row as the builder appends it: the loader's columns, 4-decimal accuracies, the
    canonical recipe JSON and seed = index + offset (the committed CSVs hold such rows)."""
    builder = _builder()
    space, evaluate = builder.make_evaluate(TINY)
    index = builder.sample_indices(1)[0]
    row = builder.train_row(space, evaluate, index, TINY, seed_offset=3)
    assert row is not None and len(row) == len(COLUMNS)
    values = dict(zip(COLUMNS, row, strict=True))
    assert values["index"] == index and values["seed"] == index + 3
    assert values["arch"] == space.to_string(space.from_index(index))
    assert len(values["fmnist_valid"].split(".")[1]) == 4
    assert json.loads(values["recipe"]) == TINY and values["recipe"] == builder.recipe_json(TINY)


def test_the_script_is_a_thin_command_line_over_the_package():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build_fmnist_table", ROOT / "benchmarks" / "build_fmnist_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from archsearch.tables import build

    assert module.RECIPES is build.RECIPES and module.build_table is build.build_table
