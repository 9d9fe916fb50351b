"""NAS-Bench-Graph: 26,206 graph neural networks trained on nine datasets (Qin et al., NeurIPS
2022 Datasets and Benchmarks).

**Space.** A GNN is a stack of pre-processing, one cell and post-processing layers; the cell
has four computing nodes, and node ``k`` (1..4) takes the output of *one* earlier node
(``0`` is the cell's input, ``j`` the ``j``-th computing node) and applies one operation:
``gat`` (2 heads), ``gcn``, ``gin``, ``cheb``, ``sage``, ``arma``, ``graph`` (k-GNN), ``fc``
(fully connected) or ``skip``. Nodes without successors are summed into the output. Node 1
always reads the input, so the decisions are ``node1.op``, then ``node{k}.input`` and
``node{k}.op`` for ``k = 2, 3, 4``: 24 wirings x 9**4 operations, less the 24 cells of
only ``skip`` (which the benchmark leaves out). Many of them are the same network (the
order of sibling branches does not matter); the benchmark trained each class once
(26,206 on the 9-op datasets) and the package maps every cell to its class with
``Arch.valid_hash()``, so every valid cell here has a table row. On ``proteins`` (ogbn-
proteins) the benchmark used five operations, ``gcn``, ``sage``, ``arma``, ``fc``, ``skip``
(2,021 classes): pass ``dataset="proteins"`` to the space.

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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.errors import DataError, InvalidArchitectureError
from archsearch.space.base import Architecture, Decision, SearchSpace
from archsearch.space.registry import SPACES

DATASETS: tuple[str, ...] = (
    "cora",
    "citeseer",
    "pubmed",
    "cs",
    "physics",
    "photo",
    "computers",
    "arxiv",
    "proteins",
)
OPERATIONS: tuple[str, ...] = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
PROTEINS_OPERATIONS: tuple[str, ...] = ("gcn", "sage", "arma", "fc", "skip")
NUM_NODES = 4


def dataset_name(name: str) -> str:
    """The benchmark's name for a dataset (case-insensitive)."""
    key = str(name).lower()
    if key not in DATASETS:
        raise DataError(f"unknown NAS-Bench-Graph dataset {name!r}; datasets: {list(DATASETS)}")
    return key


def operations_for(dataset: str) -> tuple[str, ...]:
    return PROTEINS_OPERATIONS if dataset_name(dataset) == "proteins" else OPERATIONS


@SPACES.register("nasbench-graph")
class NASBenchGraphSpace(SearchSpace):
    """The NAS-Bench-Graph cell space; see the module docstring.

    ``dataset`` only selects the operation list (five on ``proteins``, nine elsewhere), so
    one space serves the eight 9-operation datasets.
    """

    name = "nasbench-graph"
    constrained = True  # only the all-skip cells are excluded

    def __init__(self, dataset: str = "cora") -> None:
        self.dataset = dataset_name(dataset)
        self.operations = operations_for(self.dataset)
        decisions = [Decision("node1.op", self.operations)]
        for k in range(2, NUM_NODES + 1):
            decisions.append(Decision(f"node{k}.input", tuple(range(k))))
            decisions.append(Decision(f"node{k}.op", self.operations))
        super().__init__(decisions)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "dataset": self.dataset}

    def is_valid(self, arch: Architecture) -> bool:
        return any(arch[f"node{k}.op"] != "skip" for k in range(1, NUM_NODES + 1))

    def size(self) -> int:
        wirings = 1
        for k in range(1, NUM_NODES + 1):
            wirings *= k
        return wirings * (len(self.operations) ** NUM_NODES - 1)

    def link_and_ops(self, arch: Architecture) -> tuple[list[int], list[str]]:
        """The package's description of a cell: each node's input and operation."""
        link = [0] + [int(arch[f"node{k}.input"]) for k in range(2, NUM_NODES + 1)]
        ops = [str(arch[f"node{k}.op"]) for k in range(1, NUM_NODES + 1)]
        return link, ops

    def from_link_and_ops(self, link: list[int], ops: list[str]) -> Architecture:
        if len(link) != NUM_NODES or len(ops) != NUM_NODES or link[0] != 0:
            raise InvalidArchitectureError(
                f"a NAS-Bench-Graph cell is 4 inputs (the first 0) and 4 operations, "
                f"got {link!r}, {ops!r}"
            )
        assignment: dict[str, Any] = {f"node{k}.op": ops[k - 1] for k in range(1, NUM_NODES + 1)}
        assignment.update({f"node{k}.input": link[k - 1] for k in range(2, NUM_NODES + 1)})
        return self.make(assignment)

    def benchmark_hash(self, arch: Architecture) -> int:
        """The benchmark's key of ``arch``'s class of equivalent cells (``Arch.valid_hash``)."""
        link, ops = self.link_and_ops(arch)
        return _package().Arch(link, ops).valid_hash()

    def isomorphism_hash(self, arch: Architecture) -> str:
        """Equal for cells the benchmark treats as the same network."""
        return str(self.benchmark_hash(arch))


# ---------------------------------------------------------------------- the table
@dataclass(frozen=True)
class NASBenchGraphTable:
    """One dataset's results: class hash -> row of the metric arrays."""

    dataset: str
    path: str
    rows: dict[int, int]
    valid: np.ndarray
    test: np.ndarray
    latency: np.ndarray
    params: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, key: int) -> int:
        try:
            return self.rows[key]
        except KeyError:
            raise DataError(
                f"NAS-Bench-Graph {self.dataset}: no result for class {key} in {self.path}"
            ) from None


def _package() -> Any:
    try:
        import nas_bench_graph
    except ImportError:
        raise DataError(
            "NAS-Bench-Graph needs the nas-bench-graph package, which ships the benchmark's "
            "data: pip install nas-bench-graph"
        ) from None
    return nas_bench_graph


def bench_path(dataset: str) -> Path:
    """Where the installed ``nas-bench-graph`` package keeps ``dataset``'s light table."""
    name = dataset_name(dataset)
    return Path(_package().__file__).resolve().parent / "light" / f"{name}.bench"


def load_nasbench_graph(dataset: str, path: str | Path | None = None) -> NASBenchGraphTable:
    """Load one dataset's table from the package (or from ``path``; cached per file)."""
    name = dataset_name(dataset)
    resolved = Path(path).expanduser().resolve() if path is not None else bench_path(name)
    if not resolved.is_file():
        raise DataError(f"NAS-Bench-Graph table for {name} not found at {resolved}")
    stat = resolved.stat()
    return _load(name, str(resolved), stat.st_mtime_ns, stat.st_size)


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


@lru_cache(maxsize=4)
def _load(dataset: str, path: str, _mtime: int, _size: int) -> NASBenchGraphTable:
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
