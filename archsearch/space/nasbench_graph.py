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

The benchmark's results are read by :mod:`archsearch.tables.nasbench_graph`; the space needs
the ``nas-bench-graph`` package only for :meth:`NASBenchGraphSpace.benchmark_hash`.
"""

from __future__ import annotations

from typing import Any

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

    capabilities = frozenset({"isomorphism_hash", "operations"})

    constrained = True  # only the all-skip cells are excluded

    def __init__(self, dataset: str = "cora") -> None:
        self.dataset = dataset_name(dataset)
        self.operations = operations_for(self.dataset)
        decisions = [Decision("node1.op", self.operations)]
        for k in range(2, NUM_NODES + 1):
            decisions.append(Decision(f"node{k}.input", tuple(range(k))))
            decisions.append(Decision(f"node{k}.op", self.operations))
        super().__init__(decisions)

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


def _package() -> Any:
    try:
        import nas_bench_graph
    except ImportError:
        raise DataError(
            "NAS-Bench-Graph needs the nas-bench-graph package, which ships the benchmark's "
            "data: pip install nas-bench-graph"
        ) from None
    return nas_bench_graph
