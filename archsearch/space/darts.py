"""The DARTS cell space (Liu, Simonyan & Yang, ICLR 2019) as a discrete search space.

A network stacks two kinds of cells: normal cells and reduction cells (stride 2, placed at
1/3 and 2/3 of the depth). A cell has two input nodes (the outputs of the two previous
cells) and four intermediate nodes; intermediate node ``n`` (numbered 2..5 as in the paper)
takes exactly two *distinct* earlier nodes and applies one operation to each, and the cell
outputs the concatenation of the four intermediate nodes.

Decisions, per cell kind ``c`` in ``normal``/``reduce`` and node ``n`` in 2..5::

    c.n{n}.in0, c.n{n}.in1   input nodes, 0..n-1, with in0 < in1 (each cell written once)
    c.n{n}.op0, c.n{n}.op1   operation applied to in0 / in1 (7 choices: DARTS's eight less
                             ``none``, which a derived DARTS cell never holds)

The canonical ``in0 < in1`` makes the pair unordered, so no cell has two names. Strings use
the paper's genotype format, ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2,
3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])``; :meth:`DARTSSpace.from_string` also
reads the genotypes printed by the paper's code (any pair order, ``range(2, 6)``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from archsearch.errors import InvalidArchitectureError
from archsearch.space.base import Architecture, Choice, Decision, SearchSpace
from archsearch.space.registry import SPACES

if TYPE_CHECKING:
    import torch

#: the DARTS search primitives, in the order of the paper's code (``PRIMITIVES``)
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
#: the operations a derived cell may hold
OPERATIONS: tuple[str, ...] = PRIMITIVES[1:]
CELLS: tuple[str, ...] = ("normal", "reduce")
NODES: tuple[int, ...] = (2, 3, 4, 5)

#: the cell found by second-order DARTS on CIFAR-10 (``DARTS_V2`` in the paper's code)
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)

_PAIR = re.compile(r"\(\s*'([a-z0-9_]+)'\s*,\s*(\d+)\s*\)")
_CELL = re.compile(r"(normal|reduce)\s*=\s*\[([^\]]*)\]")


def label(cell: str, node: int, field: str) -> str:
    """The decision label, e.g. ``label("normal", 2, "in0") == "normal.n2.in0"``."""
    return f"{cell}.n{node}.{field}"


@SPACES.register("darts")
class DARTSSpace(SearchSpace):
    """The DARTS space: a normal and a reduction cell, 2 inputs and 4 nodes each.

    ``channels`` (initial C) and ``layers`` (cells in the network) size what :meth:`build`
    makes. The defaults, C=16 and 8 cells, are the paper's *search* network and fit a CPU;
    the paper evaluates its cells at C=36 and 20 cells.
    """

    capabilities = frozenset({"allowed", "build", "operations"})

    constrained = True
    operations = OPERATIONS

    def __init__(self, channels: int = 16, layers: int = 8) -> None:
        if channels <= 0 or channels % 2 or layers < 3:
            raise InvalidArchitectureError(
                f"darts needs an even channels > 0 and layers >= 3, got {channels}, {layers}"
            )
        decisions = []
        for cell in CELLS:
            for node in NODES:
                inputs = tuple(range(node))
                decisions += [
                    Decision(label(cell, node, "in0"), inputs),
                    Decision(label(cell, node, "in1"), inputs),
                    Decision(label(cell, node, "op0"), OPERATIONS),
                    Decision(label(cell, node, "op1"), OPERATIONS),
                ]
        super().__init__(decisions)
        self.channels = channels
        self.layers = layers

    # ---------------------------------------------------------------- validity
    def is_valid(self, arch: Architecture) -> bool:
        return all(
            int(arch[label(c, n, "in0")]) < int(arch[label(c, n, "in1")])
            for c in CELLS
            for n in NODES
        )

    def allowed(self, decision_label: str, partial: Mapping[str, Choice]) -> list[bool]:
        """Which choices of a decision keep the architecture valid, given the decisions
        before it (in space order). Sequential samplers such as the ENAS controller use this
        to sample valid cells directly instead of rejecting invalid ones."""
        decision = self.decision(decision_label)
        cell, node, field = decision_label.split(".")
        n = int(node[1:])
        if field == "in0":
            return [i < n - 1 for i in decision.choices]
        if field == "in1":
            first = int(partial[label(cell, n, "in0")])
            return [i > first for i in decision.choices]
        return [True] * len(decision.choices)

    def size(self) -> int:
        per_cell = math.prod(math.comb(n, 2) * len(OPERATIONS) ** 2 for n in NODES)
        return per_cell ** len(CELLS)

    # ------------------------------------------------------------- exploration
    def sample(self, rng: np.random.Generator) -> Architecture:
        """Uniform over valid cells: an unordered pair of distinct inputs and two operations
        per node (rejection sampling would accept only 1 in 6,400 draws)."""
        assignment: dict[str, Choice] = {}
        for cell in CELLS:
            for n in NODES:
                first, second = sorted(int(i) for i in rng.choice(n, size=2, replace=False))
                assignment[label(cell, n, "in0")] = first
                assignment[label(cell, n, "in1")] = second
                for field in ("op0", "op1"):
                    assignment[label(cell, n, field)] = OPERATIONS[
                        int(rng.integers(len(OPERATIONS)))
                    ]
        return self.make(assignment)

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """A uniformly chosen valid neighbour: one operation or one input node changed."""
        options = self.neighbours(arch)
        return options[int(rng.integers(len(options)))]

    # ------------------------------------------------------------- genotypes
    def genotype(self, arch: Architecture) -> dict[str, list[tuple[str, int]]]:
        """The paper's genotype: per cell kind, two ``(operation, input)`` pairs per node."""
        result = {}
        for cell in CELLS:
            pairs = []
            for n in NODES:
                pairs.append((str(arch[label(cell, n, "op0")]), int(arch[label(cell, n, "in0")])))
                pairs.append((str(arch[label(cell, n, "op1")]), int(arch[label(cell, n, "in1")])))
            result[cell] = pairs
        return result

    def from_genotype(self, genotype: Mapping[str, Sequence[tuple[str, int]]]) -> Architecture:
        """The architecture of a genotype; each node's two pairs may come in any order."""
        assignment: dict[str, Choice] = {}
        for cell in CELLS:
            pairs = list(genotype.get(cell, ()))
            if len(pairs) != 2 * len(NODES):
                raise InvalidArchitectureError(
                    f"a DARTS {cell} cell needs {2 * len(NODES)} (op, input) pairs, "
                    f"got {len(pairs)}"
                )
            for k, n in enumerate(NODES):
                a, b = sorted(pairs[2 * k : 2 * k + 2], key=lambda p: int(p[1]))
                if int(a[1]) == int(b[1]):
                    raise InvalidArchitectureError(
                        f"node {n} of the {cell} cell takes input {a[1]} twice; inputs must differ"
                    )
                assignment[label(cell, n, "in0")] = int(a[1])
                assignment[label(cell, n, "op0")] = str(a[0])
                assignment[label(cell, n, "in1")] = int(b[1])
                assignment[label(cell, n, "op1")] = str(b[0])
        return self.make(assignment)

    def to_string(self, arch: Architecture) -> str:
        g = self.genotype(arch)
        concat = list(NODES)
        return (
            f"Genotype(normal={g['normal']!r}, normal_concat={concat!r}, "
            f"reduce={g['reduce']!r}, reduce_concat={concat!r})"
        )

    def from_string(self, text: str) -> Architecture:
        text = text.strip()
        if text.startswith("{"):
            return super().from_string(text)
        cells = {m.group(1): m.group(2) for m in _CELL.finditer(text)}
        if not text.startswith("Genotype(") or set(cells) != set(CELLS):
            raise InvalidArchitectureError(
                f"not a DARTS genotype: {text[:80]!r} (expected Genotype(normal=[('op', i), ...],"
                " reduce=[...]) or a JSON object of decisions)"
            )
        genotype = {c: [(op, int(i)) for op, i in _PAIR.findall(body)] for c, body in cells.items()}
        return self.from_genotype(genotype)

    def skip_connections(self, arch: Architecture, cell: str = "normal") -> int:
        """Identity edges in one cell: the DARTS+ collapse signal (Liang et al. 2019)."""
        return sum(arch[label(cell, n, f"op{k}")] == "skip_connect" for n in NODES for k in (0, 1))

    # ----------------------------------------------------------------- building
    def build(
        self, arch: Architecture, input_shape: Sequence[int], num_classes: int
    ) -> torch.nn.Module:
        from archsearch.oneshot.darts_network import DARTSNetwork

        return DARTSNetwork(
            self.genotype(arch),
            in_channels=int(input_shape[0]),
            num_classes=num_classes,
            channels=self.channels,
            layers=self.layers,
        )
