"""The NAS-Bench-201 table: accuracies of all 15,625 cells after 200 epochs.

The file is a CSV with an ``arch`` column in the benchmark's string format and, per dataset,
``<dataset>_valid`` and ``<dataset>_test`` columns (accuracy in %); see
``../shared/README.md``. It is validated on load so that a truncated or edited file fails
loudly instead of silently skewing a benchmark.

The hardware-independent costs of every cell's network (:func:`nb201_costs`) ship with the
package instead, since they follow from the builder and need no table:
``data/nb201_costs.csv.gz`` beside this module, written by ``scripts/nb201_costs.py``. So
does what this project measured of every CIFAR-10 network on its own machine class
(:func:`nb201_hardware`): ``data/nb201_latency.csv.gz``, the same bytes as the repository's
``data/nb201_latency.csv``, written by ``benchmarks/build_nb201_latency.py``.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from archsearch.errors import DataError, InvalidArchitectureError
from archsearch.hardware.figures import FIGURES
from archsearch.space.base import Architecture
from archsearch.space.nb201 import NB201Space
from archsearch.tables.base import Table, load_cached

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16")
_ALIASES = {"imagenet16-120": "imagenet16", "ImageNet16-120": "imagenet16"}
SIZE = 5**6

#: the costs :func:`nb201_costs` gives for each architecture
COSTS: tuple[str, ...] = ("params", "flops")
#: the network the benchmark trains on each dataset: (input shape, classes); C=16, N=5
NETWORKS: dict[str, tuple[tuple[int, int, int], int]] = {
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "imagenet16": ((3, 16, 16), 120),
}
_COSTS_FILE = "data/nb201_costs.csv.gz"
#: the figures :func:`nb201_hardware` gives (names as the ``hardware`` evaluator's)
HARDWARE = FIGURES
_HARDWARE_FILE = "data/nb201_latency.csv.gz"
_FEATURES = 64  # the classifier's inputs: 4C channels after global pooling, C = 16


def dataset_name(name: str) -> str:
    """The table's name for a dataset, accepting the benchmark's aliases."""
    name = _ALIASES.get(name, name)
    if name not in DATASETS:
        raise DataError(f"unknown NAS-Bench-201 dataset {name!r}; datasets: {list(DATASETS)}")
    return name


@dataclass(frozen=True)
class NB201Table(Table):
    """Validated, array-backed NAS-Bench-201 results; the row of a cell is its index."""

    path: str
    columns: dict[str, np.ndarray]  # column name -> float array in index order
    space: NB201Space

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def row(self, arch: Architecture) -> int:
        return self.space.index(arch)

    def query(self, arch: Architecture, column: str) -> float:
        return float(self.columns[column][self.space.index(arch)])

    def column(self, name: str) -> np.ndarray:
        try:
            return self.columns[name]
        except KeyError:
            raise DataError(f"table {self.path} has no column {name!r}") from None

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))


@cache
def nb201_costs(dataset: str = "cifar10") -> dict[str, np.ndarray]:
    """``params`` (trainable) and ``flops`` (one forward of one input) of every benchmark
    network (C=16, N=5) on ``dataset``, as int64 arrays in index order (read-only).

    The package stores them for CIFAR-10: ``scripts/nb201_costs.py`` built every network with
    ``NB201Space().build(arch, (3, 32, 32), 10)`` and counted it with
    :mod:`archsearch.hardware.cost` (FLOPs: two per multiply-add, pooling not counted). The
    other datasets' networks differ only in the classifier, ``Linear(64, K)`` (65 K
    parameters, 2 * 64 * K FLOPs), and, for ImageNet16-120's 16x16 images, in that every
    feature map is half as high and wide, so that every convolution costs exactly a quarter
    of its FLOPs; the tests check these against the builder.
    """
    input_shape, classes = NETWORKS[dataset_name(dataset)]
    params, flops = _packaged_costs()
    params = params + (_FEATURES + 1) * (classes - 10)
    convolutions = flops - 2 * _FEATURES * 10
    if input_shape[1:] == (16, 16):  # every feature map has a quarter of the positions
        convolutions = convolutions // 4
    costs = {"params": params, "flops": convolutions + 2 * _FEATURES * classes}
    for array in costs.values():
        array.setflags(write=False)
    return costs


def _packaged_rows(name: str, header: list[str], what: str) -> list[list[str]]:
    """The rows under ``header`` of a gzipped CSV the package ships; anything unreadable is
    one :class:`DataError` naming the file."""
    try:
        raw = resources.files("archsearch.tables").joinpath(name).read_bytes()
        rows = list(csv.reader(io.StringIO(gzip.decompress(raw).decode())))
        if not rows or rows[0] != header:
            raise ValueError(f"header {rows[0] if rows else None}, expected {header}")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"corrupt NAS-Bench-201 {what} archsearch/tables/{name}: {exc}") from None
    return rows[1:]


@cache
def _packaged_costs() -> tuple[np.ndarray, np.ndarray]:
    """The packaged CIFAR-10 costs, validated: every index once, in order, positive."""
    where = f"archsearch/tables/{_COSTS_FILE}"
    rows = _packaged_rows(_COSTS_FILE, ["index", *COSTS], "costs")
    try:
        table = np.array(rows, dtype=np.int64)
    except ValueError as exc:
        raise DataError(f"corrupt NAS-Bench-201 costs {where}: {exc}") from None
    if table.shape != (SIZE, 3) or not np.array_equal(table[:, 0], np.arange(SIZE)):
        raise DataError(f"corrupt NAS-Bench-201 costs {where}: not one row per index 0..{SIZE - 1}")
    if (table[:, 1:] <= 0).any():
        raise DataError(f"corrupt NAS-Bench-201 costs {where}: non-positive costs")
    return table[:, 1], table[:, 2]


@cache
def nb201_hardware() -> dict[str, np.ndarray]:
    """The measured figures of every CIFAR-10 benchmark network (C=16, N=5, 3x32x32, 10
    classes), as float arrays in index order (read-only): eager-PyTorch and ONNX Runtime
    CPU latency (ms; batch 1, one thread) with their inter-quartile ranges, and peak forward
    memory (MB). Measured on this project's 2-core machine class under the protocol of
    ``benchmarks/build_nb201_latency.py``; their noise across processes is in
    ``benchmarks/results/latency_noise.txt``. Validated: one row per cell, in index order,
    finite, latencies and memory positive."""
    where = f"archsearch/tables/{_HARDWARE_FILE}"
    rows = _packaged_rows(_HARDWARE_FILE, ["arch", *HARDWARE], "hardware table")
    try:
        archs = [row[0] for row in rows]
        table = np.array([row[1:] for row in rows], dtype=float)
    except (ValueError, IndexError) as exc:
        raise DataError(f"corrupt NAS-Bench-201 hardware table {where}: {exc}") from None
    space = NB201Space()
    if table.shape != (SIZE, len(HARDWARE)) or archs != [
        space.to_string(space.from_index(i)) for i in range(SIZE)
    ]:
        raise DataError(f"corrupt NAS-Bench-201 hardware table {where}: not one row per cell")
    positive = [HARDWARE.index(n) for n in ("latency_ms", "onnx_latency_ms", "peak_memory_mb")]
    if not np.isfinite(table).all() or (table[:, positive] <= 0).any():
        raise DataError(f"corrupt NAS-Bench-201 hardware table {where}: non-finite or <= 0")
    columns = {name: table[:, k] for k, name in enumerate(HARDWARE)}
    for array in columns.values():
        array.setflags(write=False)
    return columns


def load_nb201_table(path: str | Path) -> NB201Table:
    """Load and validate a NAS-Bench-201 CSV (cached per resolved path, mtime and size)."""
    return load_cached(_load, path, "NAS-Bench-201 table")


def _load(path: str) -> NB201Table:
    space = NB201Space()
    size = SIZE
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            needed = ["arch"] + [f"{d}_{s}" for d in DATASETS for s in ("valid", "test")]
            missing = [c for c in needed if c not in header]
            if missing:
                raise DataError(f"corrupt NAS-Bench-201 table {path}: missing columns {missing}")
            numeric = [c for c in header if c not in ("arch", "index")]
            values = {c: np.full(size, np.nan) for c in numeric}
            filled = np.zeros(size, dtype=bool)
            for line, row in enumerate(reader, start=2):
                try:
                    i = space.index(space.from_string(row["arch"]))
                    for c in numeric:
                        values[c][i] = float(row[c])
                except (InvalidArchitectureError, ValueError, TypeError, KeyError) as exc:
                    raise DataError(
                        f"corrupt NAS-Bench-201 table {path}, line {line}: {exc}"
                    ) from None
                if filled[i]:
                    raise DataError(
                        f"corrupt NAS-Bench-201 table {path}: line {line} repeats {row['arch']}"
                    )
                filled[i] = True
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read NAS-Bench-201 table {path}: {exc}") from None
    if not filled.all():
        missing = int((~filled).sum())
        raise DataError(
            f"corrupt NAS-Bench-201 table {path}: {missing} of {size} architectures missing"
        )
    for c in needed[1:]:
        if not all(math.isfinite(v) for v in values[c]):
            raise DataError(f"corrupt NAS-Bench-201 table {path}: non-finite values in {c!r}")
    return NB201Table(path=path, columns=values, space=space)
