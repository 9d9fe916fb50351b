"""The stand-alone network of a DARTS genotype (``NetworkCIFAR`` of Liu et al. 2019).

A 3x3 stem to ``3 * C`` channels, ``layers`` cells with the channel count doubled at the
reduction cells (1/3 and 2/3 of the depth), global average pooling and a linear classifier.
Each cell preprocesses its two inputs to C channels (a factorized reduction for the input
coming from before a reduction cell), applies the genotype's two operations per node and
concatenates the four intermediate nodes. The auxiliary head and drop-path of the paper's
200-epoch CIFAR recipe are left out: they are training tricks, not part of the architecture.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from archsearch.oneshot.ops import DARTS_OPS, FactorizedReduce, ReLUConvBN

STEPS = 4
STEM_MULTIPLIER = 3


def reduction_layers(layers: int) -> tuple[int, int]:
    """Positions of the two reduction cells, at 1/3 and 2/3 of the depth (as in DARTS)."""
    return layers // 3, 2 * layers // 3


def stacked_cells(
    in_channels: int,
    channels: int,
    layers: int,
    make_cell: Callable[[int, int, int, bool, bool], nn.Module],
) -> tuple[nn.Sequential, nn.ModuleList, int]:
    """The DARTS network's skeleton, shared by the discrete network and the supernet.

    A 3x3 stem with ``STEM_MULTIPLIER * channels`` outputs, then ``layers`` cells that each
    read the two previous outputs; the reduction cells double the channels. ``make_cell(
    c_prev_prev, c_prev, c, reduction, reduction_prev)`` builds one cell, whose output
    concatenates its ``STEPS`` intermediate nodes. Returns the stem, the cells and the
    channels of the last cell's output.
    """
    c_curr = STEM_MULTIPLIER * channels
    stem = nn.Sequential(
        nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
    )
    c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
    reduction_prev = False
    cells = nn.ModuleList()
    for i in range(layers):
        reduction = i in reduction_layers(layers)
        if reduction:
            c_curr *= 2
        cells.append(make_cell(c_prev_prev, c_prev, c_curr, reduction, reduction_prev))
        reduction_prev = reduction
        c_prev_prev, c_prev = c_prev, STEPS * c_curr
    return stem, cells, c_prev


class DARTSCell(nn.Module):
    """One discrete cell: two ``(operation, input)`` pairs per intermediate node."""

    def __init__(
        self,
        pairs: Sequence[tuple[str, int]],
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, c)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.inputs = [int(i) for _, i in pairs]
        self.ops = nn.ModuleList(
            DARTS_OPS[op](c, 2 if reduction and i < 2 else 1, True) for op, i in pairs
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(STEPS):
            a, b = 2 * k, 2 * k + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat(states[2:], dim=1)


class DARTSNetwork(nn.Module):
    """A network of DARTS cells for ``in_channels`` x H x W inputs."""

    def __init__(
        self,
        genotype: Mapping[str, Sequence[tuple[str, int]]],
        in_channels: int,
        num_classes: int,
        channels: int = 16,
        layers: int = 8,
    ) -> None:
        super().__init__()

        def cell(c_prev_prev: int, c_prev: int, c: int, reduction: bool, reduction_prev: bool):
            pairs = genotype["reduce" if reduction else "normal"]
            return DARTSCell(pairs, c_prev_prev, c_prev, c, reduction, reduction_prev)

        self.stem, self.cells, c_prev = stacked_cells(in_channels, channels, layers, cell)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(torch.flatten(self.pool(s1), 1))
