"""The one table protocol (archsearch.tables.base.Table), run over all four tables."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from archsearch.space import NB201Space
from archsearch.tables import (
    Table,
    load_fmnist_table,
    load_generic_table,
    load_nb201_table,
)

ROOT = Path(__file__).resolve().parents[1]
FMNIST = ROOT / "data" / "fmnist_nb201.csv"


def _generic(tmp_path: Path) -> Path:
    path = tmp_path / "toy.csv"
    rows = [[d, w, 60.0 + d + w / 8, 59.0 + d, 1.5 * w] for d in (1, 2, 3) for w in (8, 16)]
    rows[-1][2] = "nan"  # a failed training stays a nan metric
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["depth", "width", "val_acc", "test_acc", "latency_ms"])
        writer.writerows(rows)
    return path


def _nasbench_graph():
    pytest.importorskip("nas_bench_graph")
    from archsearch.tables import load_nasbench_graph

    return load_nasbench_graph("cora")


@pytest.fixture(params=["nb201", "fmnist", "generic", "nasbench-graph"])
def table(request, tmp_path) -> Table:
    if request.param == "nb201":
        return load_nb201_table(request.getfixturevalue("nb201_csv"))
    if request.param == "fmnist":
        return load_fmnist_table(FMNIST)
    if request.param == "generic":
        return load_generic_table(_generic(tmp_path), metrics=["val_acc", "test_acc", "latency_ms"])
    return _nasbench_graph()


def _some_archs(table: Table, n: int = 5) -> list:
    rng = np.random.default_rng(0)
    if isinstance(table.space, NB201Space) and hasattr(table, "architectures"):
        archs = table.architectures()  # the Fashion-MNIST table holds a sample of cells
        return [archs[int(i)] for i in rng.choice(len(archs), n, replace=False)]
    return [table.space.sample(rng) for _ in range(n)]


def test_every_table_answers_the_protocol(table):
    assert isinstance(table, Table)
    assert Path(table.path).is_file() and Path(table.path).is_absolute()
    assert len(table) > 0 and table.metric_names
    for name in table.metric_names:
        column = table.column(name)
        assert column.dtype == float and len(column) == len(table)
    for arch in _some_archs(table):
        r = table.row(arch)
        assert 0 <= r < len(table) and arch in table
        values = table.lookup(arch)
        assert list(values) == list(table.metric_names)
        for name, value in values.items():
            assert np.isnan(value) or value == table.column(name)[r]


def test_unknown_columns_and_missing_rows_fail_with_a_data_error(table):
    from archsearch.errors import DataError

    with pytest.raises(DataError):
        table.column("no such column")
    assert "not an architecture" not in table


def test_a_table_missing_a_row_says_so(tmp_path):
    lines = FMNIST.read_text().splitlines()
    path = tmp_path / "short.csv"
    path.write_text("\n".join(lines[:3]) + "\n")
    table = load_fmnist_table(path)
    outside = next(a for a in load_fmnist_table(FMNIST).architectures() if a not in table)
    assert len(table) == 2 and outside not in table


def test_every_table_file_is_read_once_until_it_changes(tmp_path):
    path = _generic(tmp_path)
    first = load_generic_table(path, metrics=["latency_ms"])
    assert load_generic_table(path, metrics=["latency_ms"]).data is first.data
    short = tmp_path / "short.csv"
    short.write_text("\n".join(FMNIST.read_text().splitlines()[:4]) + "\n")
    table = load_fmnist_table(short)
    assert load_fmnist_table(short) is table
    short.write_text("\n".join(FMNIST.read_text().splitlines()[:3]) + "\n")
    stat = short.stat()
    os.utime(short, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert len(load_fmnist_table(short)) == 2
