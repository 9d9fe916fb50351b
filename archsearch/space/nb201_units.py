"""A NAS-Bench-201 network cut into latency units (:mod:`archsearch.hardware.units`).

The pieces follow :class:`~archsearch.space.nb201_network.NB201Network`'s forward pass:
the stem; in each cell, every edge's operation and every node's sum of its inputs (or its
zero tensor, for a node whose edges are all ``none``); the two residual reductions; and the
head. A cell's pieces repeat across its stage, so a table of 3 stages x (4 operations +
sums) plus the fixed parts, 25 entries, prices all 15,625 networks.

Liveness (what a dead-code-eliminating runtime still runs): node 3 is the cell's output; an
earlier node is live when a non-``none`` edge carries it to a live node; an edge or a sum
is live when the node it feeds is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from archsearch.hardware.units import Unit
from archsearch.space.nb201_network import ResidualReduction, _edge

OPERATIONS_WITH_MODULES = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class SumOf(nn.Module):
    """A node's sum of ``inputs`` tensors (timed on one input added to itself)."""

    def __init__(self, inputs: int) -> None:
        super().__init__()
        self.inputs = inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x
        for _ in range(self.inputs - 1):
            total = total + x
        return total


class ZeroNode(nn.Module):
    """A node with no live input: the cell computes it as ``node0 * 0``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.0


def _stem(c_in: int, channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
    )


def _head(channels: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, num_classes),
    )


def _stages(input_shape: Sequence[int], channels: int) -> list[tuple[int, int]]:
    """(channels, resolution) of each stage's cells."""
    side = int(input_shape[1])
    return [(channels * 2**s, math.ceil(side / 2**s)) for s in range(3)]


def fixed_units(
    input_shape: Sequence[int], num_classes: int, channels: int
) -> tuple[Unit, list[Unit], Unit]:
    """The stem, the two reductions and the head: the same in every network."""
    c_in, side = int(input_shape[0]), int(input_shape[1])
    stages = _stages(input_shape, channels)
    stem = Unit(
        f"stem:{c_in}>{channels}:r{side}",
        (c_in, side, int(input_shape[2])),
        lambda: _stem(c_in, channels),
    )
    reductions = [
        Unit(
            f"reduction:c{c}>{2 * c}:r{r}",
            (c, r, r),
            lambda c=c: ResidualReduction(c, 2 * c),
        )
        for c, r in stages[:2]
    ]
    c_last, r_last = stages[2]
    head = Unit(
        f"head:c{c_last}:r{r_last}>{num_classes}",
        (c_last, r_last, r_last),
        lambda: _head(c_last, num_classes),
    )
    return stem, reductions, head


def cell_units(cell: Sequence[Sequence[str]], c: int, r: int) -> list[Unit]:
    """One cell's units: ``cell[j - 1][i]`` is the operation of edge ``j <- i``."""
    live_nodes = {3}
    for j in (2, 1):  # a node is live when a real edge takes it to a live node
        if any(cell[k - 1][j] != "none" and k in live_nodes for k in range(j + 1, 4)):
            live_nodes.add(j)
    units = []
    for j, node in enumerate(cell, start=1):
        live = j in live_nodes
        real = [op for op in node if op != "none"]
        for op in real:
            units.append(Unit(f"{op}:c{c}:r{r}", (c, r, r), lambda op=op: _edge(op, c), live))
        if not real:
            units.append(Unit(f"zero:c{c}:r{r}", (c, r, r), ZeroNode, live))
        elif len(real) > 1:
            k = len(real)
            units.append(Unit(f"add{k}:c{c}:r{r}", (c, r, r), lambda k=k: SumOf(k), live))
    return units


def network_units(
    cell: Sequence[Sequence[str]],
    input_shape: Sequence[int],
    num_classes: int,
    channels: int,
    cells_per_stage: int,
) -> list[Unit]:
    """Every unit of the network of ``cell``, in forward order."""
    stem, reductions, head = fixed_units(input_shape, num_classes, channels)
    units = [stem]
    for stage, (c, r) in enumerate(_stages(input_shape, channels)):
        if stage > 0:
            units.append(reductions[stage - 1])
        units.extend(cell_units(cell, c, r) * cells_per_stage)
    return [*units, head]


def every_unit(input_shape: Sequence[int], num_classes: int, channels: int) -> list[Unit]:
    """Every distinct unit any network of the space holds."""
    stem, reductions, head = fixed_units(input_shape, num_classes, channels)
    units = [stem, *reductions, head]
    for c, r in _stages(input_shape, channels):
        for op in OPERATIONS_WITH_MODULES:
            units.append(Unit(f"{op}:c{c}:r{r}", (c, r, r), lambda op=op, c=c: _edge(op, c)))
        units.append(Unit(f"zero:c{c}:r{r}", (c, r, r), ZeroNode))
        for k in (2, 3):
            units.append(Unit(f"add{k}:c{c}:r{r}", (c, r, r), lambda k=k: SumOf(k)))
    return units
