"""NAS-Bench-Graph: 26,206 graph neural networks trained on nine datasets (Qin et al., NeurIPS
2022 Datasets and Benchmarks).

The cell space (and what a row is: one class of equivalent cells) is described in
:mod:`archsearch.space.nasbench_graph`, whose names this module re-exports.

**Data.** The ``nas-bench-graph`` package (PyPI, Apache-2.0) ships, in
``nas_bench_graph/light/<dataset>.bench``, a pickled dict per dataset: class hash ->
``valid_perf``, ``perf`` (test), ``latency`` and ``para``. The package does not document
the units; the magnitudes are those of seconds and millions of parameters. Performance is
accuracy as a fraction (ROC-AUC on proteins). The files are read with an unpickler that only
accepts the numpy scalars they contain, so a tampered file cannot run code. Per-epoch
curves are in the full benchmark (figshare), which this module does not download.
"""

from __future__ import annotations

import io
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.errors import DataError
from archsearch.space.base import Architecture
from archsearch.space.nasbench_graph import (
    DATASETS,
    NUM_NODES,
    OPERATIONS,
    PROTEINS_OPERATIONS,
    NASBenchGraphSpace,
    _package,
    dataset_name,
    operations_for,
)
from archsearch.tables.base import Table, load_cached

__all__ = [
    "DATASETS",
    "NUM_NODES",
    "OPERATIONS",
    "PROTEINS_OPERATIONS",
    "NASBenchGraphSpace",
    "NASBenchGraphTable",
    "bench_path",
    "dataset_name",
    "load_nasbench_graph",
    "operations_for",
]

#: the table's metric columns (the protocol's names) and the benchmark's names for them
METRICS: dict[str, str] = {
    "valid": "valid_perf",
    "test": "perf",
    "latency": "latency",
    "params": "para",
}


@dataclass(frozen=True)
class NASBenchGraphTable(Table):
    """One dataset's results: class hash -> row of the metric arrays.

    A cell's row is that of its class of equivalent cells (``space.benchmark_hash``).
    """

    dataset: str
    path: str
    rows: dict[int, int]
    valid: np.ndarray
    test: np.ndarray
    latency: np.ndarray
    params: np.ndarray
    space: NASBenchGraphSpace = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "space", NASBenchGraphSpace(self.dataset))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(METRICS)

    def column(self, name: str) -> np.ndarray:
        if name not in METRICS:
            raise DataError(f"table {self.path} has no column {name!r}; columns: {list(METRICS)}")
        return getattr(self, name)

    def row(self, arch: Architecture | int) -> int:
        """The row of a cell, or of a class given by its benchmark hash (an int)."""
        key = arch if isinstance(arch, int) else self.space.benchmark_hash(arch)
        try:
            return self.rows[key]
        except KeyError:
            raise DataError(
                f"NAS-Bench-Graph {self.dataset}: no result for class {key} in {self.path}"
            ) from None


def bench_path(dataset: str) -> Path:
    """Where the installed ``nas-bench-graph`` package keeps ``dataset``'s light table."""
    name = dataset_name(dataset)
    return Path(_package().__file__).resolve().parent / "light" / f"{name}.bench"


def load_nasbench_graph(dataset: str, path: str | Path | None = None) -> NASBenchGraphTable:
    """Load one dataset's table from the package (or from ``path``; cached per file)."""
    name = dataset_name(dataset)
    where = Path(path) if path is not None else bench_path(name)
    return load_cached(_load, where, f"NAS-Bench-Graph table for {name}", name)


class _NumpyScalarUnpickler(pickle.Unpickler):
    """Accepts only what the benchmark files hold: dicts, floats and numpy float scalars."""

    _ALLOWED = {
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core -> numpy._core
            return super().find_class(module, name)


def _load(path: str, dataset: str) -> NASBenchGraphTable:
    try:
        with open(path, "rb") as f:
            data = _NumpyScalarUnpickler(io.BytesIO(f.read())).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"cannot read NAS-Bench-Graph table {path}: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise DataError(f"corrupt NAS-Bench-Graph table {path}: expected a non-empty dict")
    keys = sorted(data)
    fields = {"valid_perf": [], "perf": [], "latency": [], "para": []}
    for key in keys:
        entry = data[key]
        if not isinstance(key, int) or not isinstance(entry, dict):
            raise DataError(f"corrupt NAS-Bench-Graph table {path}: bad entry {key!r}")
        for name, values in fields.items():
            try:
                values.append(float(entry[name]))
            except (KeyError, TypeError, ValueError):
                raise DataError(
                    f"corrupt NAS-Bench-Graph table {path}: class {key} lacks a number {name!r}"
                ) from None
    arrays = {name: np.array(values) for name, values in fields.items()}
    for name in ("valid_perf", "perf"):
        if not np.isfinite(arrays[name]).all():
            raise DataError(f"corrupt NAS-Bench-Graph table {path}: non-finite {name!r}")
    return NASBenchGraphTable(
        dataset=dataset,
        path=path,
        rows={key: i for i, key in enumerate(keys)},
        valid=arrays["valid_perf"],
        test=arrays["perf"],
        latency=arrays["latency"],
        params=arrays["para"],
    )
