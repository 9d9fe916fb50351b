"""The NAS-Bench-201 table: accuracies of all 15,625 cells after 200 epochs.

The file is a CSV with an ``arch`` column in the benchmark's string format and, per dataset,
``<dataset>_valid`` and ``<dataset>_test`` columns (accuracy in %); see
``../shared/README.md``. It is validated on load so that a truncated or edited file fails
loudly instead of silently skewing a benchmark.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archsearch.errors import DataError, InvalidArchitectureError
from archsearch.space.base import Architecture
from archsearch.space.nb201 import NB201Space
from archsearch.tables.base import Table, load_cached

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16")
_ALIASES = {"imagenet16-120": "imagenet16", "ImageNet16-120": "imagenet16"}


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


def load_nb201_table(path: str | Path) -> NB201Table:
    """Load and validate a NAS-Bench-201 CSV (cached per resolved path, mtime and size)."""
    return load_cached(_load, path, "NAS-Bench-201 table")


def _load(path: str) -> NB201Table:
    space = NB201Space()
    size = 5**6
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
