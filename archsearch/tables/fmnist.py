"""Our own ground truth: a seeded sample of NAS-Bench-201 cells trained on Fashion-MNIST.

CIFAR is not available on the machines this project runs on, so data-dependent estimators
(proxies, predictors, supernets) cannot be checked against NAS-Bench-201's CIFAR accuracies.
:mod:`archsearch.tables.build` (``benchmarks/build_fmnist_table.py`` is its command line)
trains a fixed sample of cells on Fashion-MNIST with one documented recipe and writes
``data/fmnist_nb201.csv``; this module loads that file.

Columns (one row per architecture, any order):

==================  ==========================================================================
``index``           NAS-Bench-201 index of the cell
``arch``            the cell in the benchmark's string format
``fmnist_valid``    validation accuracy (%) after the recipe's training: what a search may see
``fmnist_test``     test accuracy (%) on the Fashion-MNIST test split: what a search reports
``params``          trainable parameters of the trained network
``flops``           FLOPs of one forward pass of one image (as counted by archsearch.hardware)
``train_seconds``   wall seconds of training and evaluation
``recipe``          the training recipe as a JSON object (the same on every row)
``seed``            training seed of the row
==================  ==========================================================================

The file is validated on load, as the NAS-Bench-201 table is, so that a truncated, edited or
mixed-recipe file fails loudly instead of silently skewing a diagnosis.

Replicates (``data/fmnist_nb201_seed1.csv``, ...) hold the same cells trained with seed =
index + 1, ...: two runs of the 2-epoch ``cpu`` recipe agree at Kendall's tau 0.39-0.43 over
the 300 cells (mean 0.413 over the three pairs), which caps what any estimator can reach
against one run at about 0.57 and against the mean of the three runs at about 0.72
(:func:`archsearch.diagnostics.noise_ceiling`; ``benchmarks/results/supernet_vs_tables.txt``).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.errors import DataError, InvalidArchitectureError
from archsearch.space.base import Architecture
from archsearch.space.nb201 import NB201Space
from archsearch.tables.base import Table, load_cached

COLUMNS: tuple[str, ...] = (
    "index",
    "arch",
    "fmnist_valid",
    "fmnist_test",
    "params",
    "flops",
    "train_seconds",
    "recipe",
    "seed",
)
NUMERIC: tuple[str, ...] = ("fmnist_valid", "fmnist_test", "params", "flops", "train_seconds")
ACCURACIES: tuple[str, ...] = ("fmnist_valid", "fmnist_test")


@dataclass(frozen=True)
class FMNISTTable(Table):
    """Validated results of the Fashion-MNIST table, in file order.

    ``archs`` holds the architecture strings, ``indices`` their NAS-Bench-201 indices and
    ``columns`` one float array per numeric column, aligned with ``archs``.
    """

    path: str
    archs: tuple[str, ...]
    indices: np.ndarray
    seeds: np.ndarray
    columns: dict[str, np.ndarray]
    recipe: dict[str, Any]
    space: NB201Space
    _rows: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rows", {a: i for i, a in enumerate(self.archs)})

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def column(self, name: str) -> np.ndarray:
        try:
            return self.columns[name]
        except KeyError:
            raise DataError(
                f"table {self.path} has no column {name!r}; columns: {sorted(self.columns)}"
            ) from None

    def row(self, arch: Architecture | str) -> int:
        """The protocol's name for :meth:`position`."""
        return self.position(arch)

    def architectures(self) -> list[Architecture]:
        """The rows' architectures, in file order."""
        return [self.space.from_string(a) for a in self.archs]

    def position(self, arch: Architecture | str) -> int:
        """Row of ``arch`` (an Architecture or its benchmark string)."""
        key = arch if isinstance(arch, str) else self.space.to_string(arch)
        try:
            return self._rows[key]
        except KeyError:
            raise DataError(f"architecture {key} is not in table {self.path}") from None

    def query(self, arch: Architecture | str, column: str) -> float:
        return float(self.column(column)[self.position(arch)])

    def __contains__(self, arch: object) -> bool:
        if isinstance(arch, Architecture):
            arch = self.space.to_string(arch)
        return arch in self._rows


def load_fmnist_table(path: str | Path) -> FMNISTTable:
    """Load and validate a Fashion-MNIST table (cached per resolved path, mtime and size)."""
    return load_cached(_load, path, "Fashion-MNIST table")


def _load(path: str) -> FMNISTTable:
    space = NB201Space()
    archs: list[str] = []
    indices: list[int] = []
    seeds: list[int] = []
    values: dict[str, list[float]] = {c: [] for c in NUMERIC}
    recipe_text: str | None = None
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"corrupt Fashion-MNIST table {path}: missing columns {missing}")
            for line, row in enumerate(reader, start=2):
                where = f"corrupt Fashion-MNIST table {path}, line {line}"
                if None in row or any(row[c] is None for c in COLUMNS):
                    raise DataError(f"{where}: wrong number of fields")
                try:
                    arch = space.from_string(row["arch"])
                    index = int(row["index"])
                    seed = int(row["seed"])
                    numbers = {c: float(row[c]) for c in NUMERIC}
                except (InvalidArchitectureError, ValueError) as exc:
                    raise DataError(f"{where}: {exc}") from None
                if space.index(arch) != index:
                    raise DataError(
                        f"{where}: index {index} is not that of {row['arch']} ({space.index(arch)})"
                    )
                bad = [c for c, v in numbers.items() if not math.isfinite(v) or v < 0]
                bad += [c for c in ACCURACIES if numbers[c] > 100]
                if bad:
                    raise DataError(f"{where}: values out of range in {bad}")
                if recipe_text is None:
                    recipe_text = row["recipe"]
                elif row["recipe"] != recipe_text:
                    raise DataError(f"{where}: the recipe differs from the first row's")
                archs.append(space.to_string(arch))
                indices.append(index)
                seeds.append(seed)
                for c in NUMERIC:
                    values[c].append(numbers[c])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read Fashion-MNIST table {path}: {exc}") from None
    if not archs:
        raise DataError(f"Fashion-MNIST table {path} has no rows")
    if len(set(archs)) != len(archs):
        repeated = sorted({a for a in archs if archs.count(a) > 1})[:3]
        raise DataError(f"corrupt Fashion-MNIST table {path}: repeated architectures {repeated}")
    try:
        recipe = json.loads(recipe_text or "")
    except json.JSONDecodeError as exc:
        raise DataError(f"corrupt Fashion-MNIST table {path}: bad recipe JSON: {exc}") from None
    if not isinstance(recipe, dict):
        raise DataError(f"corrupt Fashion-MNIST table {path}: the recipe is not a JSON object")
    return FMNISTTable(
        path=path,
        archs=tuple(archs),
        indices=np.asarray(indices, dtype=np.int64),
        seeds=np.asarray(seeds, dtype=np.int64),
        columns={c: np.asarray(v, dtype=float) for c, v in values.items()},
        recipe=recipe,
        space=space,
    )
