"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020).

A cell is a DAG over four nodes; every node ``j`` sums one operation applied to each earlier
node ``i < j`` (six edges). Each edge picks one of five operations, so the space holds
5**6 = 15,625 cells. Architectures are written in the benchmark's own string format,
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, and numbered in the benchmark's index order.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from archsearch.errors import InvalidArchitectureError
from archsearch.space.base import Architecture, Decision, SearchSpace
from archsearch.space.registry import SPACES

if TYPE_CHECKING:
    import torch

    from archsearch.hardware.units import Unit

OPERATIONS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
NUM_NODES = 4
#: (to, from) for the six edges, in the order the benchmark's string lists them
EDGES: tuple[tuple[int, int], ...] = tuple((j, i) for j in range(1, NUM_NODES) for i in range(j))


def edge_label(to: int, src: int) -> str:
    return f"{to}<-{src}"


@cache
def _index_codes() -> tuple[str, ...]:
    """The benchmark's index order, as one base-5 digit string of operations per index.

    Derived from the NAS-Bench-201 table so that indices agree with the benchmark without
    needing the table at run time.
    """
    path = resources.files("archsearch.space").joinpath("nb201_index.txt.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt") as f:
        return tuple(line.strip() for line in f if line.strip())


@cache
def _code_to_index() -> dict[str, int]:
    return {code: i for i, code in enumerate(_index_codes())}


@SPACES.register("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201: six edges, five operations, the benchmark's network skeleton.

    ``channels`` (C) and ``cells_per_stage`` (N) size the network that :meth:`build` makes:
    a 3x3 stem to C channels, three stages of N cells at C, 2C and 4C channels separated by
    residual reduction blocks, then BN-ReLU, global pooling and a linear classifier. The
    defaults C=16, N=5 are the benchmark's.
    """

    capabilities = frozenset({"build", "graph", "isomorphism_hash", "operations", "latency_units"})

    operations = OPERATIONS
    encodings = ("onehot", "adjacency")

    def __init__(self, channels: int = 16, cells_per_stage: int = 5) -> None:
        if channels <= 0 or cells_per_stage <= 0:
            raise InvalidArchitectureError(
                f"channels and cells_per_stage must be positive, got {channels}, {cells_per_stage}"
            )
        super().__init__([Decision(edge_label(j, i), OPERATIONS) for j, i in EDGES])
        self.channels = channels
        self.cells_per_stage = cells_per_stage

    # ------------------------------------------------------------- string format
    def to_string(self, arch: Architecture) -> str:
        nodes = []
        for j in range(1, NUM_NODES):
            nodes.append("|".join(f"{arch[edge_label(j, i)]}~{i}" for i in range(j)))
        return "|" + "|+|".join(nodes) + "|"

    def from_string(self, text: str) -> Architecture:
        text = text.strip()
        nodes = text.strip("|").split("|+|") if text.startswith("|") else []
        if len(nodes) != NUM_NODES - 1:
            raise InvalidArchitectureError(
                f"not a NAS-Bench-201 string: {text!r} (expected |op~0|+|op~0|op~1|+|...|)"
            )
        assignment = {}
        for j, node in enumerate(nodes, start=1):
            tokens = node.split("|")
            if len(tokens) != j:
                raise InvalidArchitectureError(f"node {j} of {text!r} needs {j} inputs")
            for i, token in enumerate(tokens):
                op, _, src = token.partition("~")
                if src != str(i):
                    raise InvalidArchitectureError(f"bad edge {token!r} in {text!r}")
                if op not in OPERATIONS:
                    raise InvalidArchitectureError(
                        f"unknown operation {op!r} in {text!r}; operations: {list(OPERATIONS)}"
                    )
                assignment[edge_label(j, i)] = op
        return self.make(assignment)

    # -------------------------------------------------------------- index order
    def index(self, arch: Architecture) -> int:
        """The architecture's index in the NAS-Bench-201 benchmark."""
        return _code_to_index()[self._code(arch)]

    def from_index(self, index: int) -> Architecture:
        codes = _index_codes()
        if not 0 <= index < len(codes):
            raise InvalidArchitectureError(
                f"NAS-Bench-201 index {index} is outside 0..{len(codes) - 1}"
            )
        return Architecture(
            (edge_label(j, i), OPERATIONS[int(c)])
            for (j, i), c in zip(EDGES, codes[index], strict=True)
        )

    def _code(self, arch: Architecture) -> str:
        return "".join(str(OPERATIONS.index(arch[edge_label(j, i)])) for j, i in EDGES)

    # ------------------------------------------------------------------- graphs
    def graph(self, arch: Architecture) -> tuple[np.ndarray, list[str]]:
        """The cell as an operation-on-node DAG: ``input``, the six edge operations, ``output``.

        Edge ``j<-i`` becomes a node fed by the input (i = 0) or by every edge into node i;
        the output node sums the edges into node 3. Predictors and path encodings read this.
        """
        names = ["input"] + [str(arch[edge_label(j, i)]) for j, i in EDGES] + ["output"]
        n = len(names)
        adjacency = np.zeros((n, n), dtype=np.int8)
        position = {edge: k + 1 for k, edge in enumerate(EDGES)}
        for (j, i), k in position.items():
            if i == 0:
                adjacency[0, k] = 1
            else:
                for (jj, _), kk in position.items():
                    if jj == i:
                        adjacency[kk, k] = 1
            if j == NUM_NODES - 1:
                adjacency[k, n - 1] = 1
        return adjacency, names

    def isomorphism_hash(self, arch: Architecture) -> str:
        """Equal for cells that compute the same function up to relabelling of nodes."""
        from archsearch.space.graph import graph_hash

        return graph_hash(*self.graph(arch))

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        if kind != "adjacency":
            return super().encode(arch, kind)
        adjacency, names = self.graph(arch)
        vocabulary = ["input", *OPERATIONS, "output"]
        ops = np.zeros((len(names), len(vocabulary)), dtype=np.float32)
        ops[np.arange(len(names)), [vocabulary.index(v) for v in names]] = 1.0
        upper = adjacency[np.triu_indices(len(names), k=1)].astype(np.float32)
        return np.concatenate([upper, ops.ravel()])

    # ----------------------------------------------------------------- building
    def build(
        self, arch: Architecture, input_shape: Sequence[int], num_classes: int
    ) -> torch.nn.Module:
        from archsearch.space.nb201_network import NB201Network

        cell = [[str(arch[edge_label(j, i)]) for i in range(j)] for j in range(1, NUM_NODES)]
        return NB201Network(
            cell,
            in_channels=int(input_shape[0]),
            num_classes=num_classes,
            channels=self.channels,
            cells_per_stage=self.cells_per_stage,
        )

    def latency_units(
        self, arch: Architecture, input_shape: Sequence[int], num_classes: int
    ) -> list[Unit]:
        """The network :meth:`build` makes, cut into latency units
        (:mod:`archsearch.space.nb201_units`)."""
        from archsearch.space.nb201_units import network_units

        cell = [[str(arch[edge_label(j, i)]) for i in range(j)] for j in range(1, NUM_NODES)]
        return network_units(cell, input_shape, num_classes, self.channels, self.cells_per_stage)

    def all_latency_units(self, input_shape: Sequence[int], num_classes: int) -> list[Unit]:
        """Every distinct unit any of the space's networks holds."""
        from archsearch.space.nb201_units import every_unit

        return every_unit(input_shape, num_classes, self.channels)
