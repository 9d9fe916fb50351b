"""The NAS-Bench-201 network skeleton (Dong & Yang, ICLR 2020, Section 2.1 and Figure 1).

A 3x3 convolution stem to C channels, three stages of N identical cells at C, 2C and 4C
channels joined by two residual reduction blocks (a ResNet basic block at stride 2), then
BN-ReLU, global average pooling and a linear classifier. The parameter count of a faithful
build equals the benchmark's published count exactly, which is what the tests check.

:func:`nb201_skeleton` builds that skeleton around any cell, so the stand-alone network
here, the weight-sharing supernet (``archsearch.oneshot.supernet``) and TE-NAS's pruning
supernet (``archsearch.oneshot.tenas_supernet``) are one network with three kinds of cell.

This module imports only ``torch``: a model exported by archsearch must load in plain
PyTorch, with no archsearch on the reader's path. The forward pass has no data-dependent
control flow, so ``torch.export.export`` traces it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn

#: the five operations of the cell, in the benchmark's order
OPERATIONS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    """ReLU -> Conv(bias=False) -> BN(affine), the benchmark's ``ReLUConvBN`` block."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


def _edge(op: str, channels: int) -> nn.Module | None:
    """The module of one cell edge; ``None`` for ``none`` (the edge adds nothing)."""
    if op == "none":
        return None
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return _relu_conv_bn(channels, channels, 1, 1)
    if op == "nor_conv_3x3":
        return _relu_conv_bn(channels, channels, 3, 1)
    if op == "avg_pool_3x3":
        # padding is not counted in the average, as in the benchmark's POOLING op
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 operation {op!r}; operations: {list(OPERATIONS)}")


class NB201Cell(nn.Module):
    """A four-node cell: node j sums op_{j<-i}(node i) over i < j; the output is node 3.

    ``none`` edges are dropped at construction time instead of multiplying by zero, which
    changes nothing in the output. A node all of whose inputs are ``none`` is the zero
    tensor, computed as ``node0 * 0`` (the benchmark's ``Zero`` op) so that it keeps the
    shape and dtype of the input and stays in the autograd graph.
    """

    def __init__(self, cell: Sequence[Sequence[str]], channels: int) -> None:
        super().__init__()
        if len(cell) != 3 or any(len(node) != j for j, node in enumerate(cell, start=1)):
            raise ValueError(
                "a NAS-Bench-201 cell is 3 lists of 1, 2 and 3 operation names "
                f"(cell[j-1][i] is edge j<-i), got {cell!r}"
            )
        self.ops = nn.ModuleList()
        #: for each node j = 1..3, the (source node, index into self.ops) of its live edges
        self.inputs: list[list[tuple[int, int]]] = []
        for node in cell:
            live = []
            for src, op in enumerate(node):
                module = _edge(op, channels)
                if module is not None:
                    live.append((src, len(self.ops)))
                    self.ops.append(module)
            self.inputs.append(live)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for live in self.inputs:
            if not live:
                nodes.append(x * 0.0)
                continue
            total = self.ops[live[0][1]](nodes[live[0][0]])
            for src, k in live[1:]:
                total = total + self.ops[k](nodes[src])
            nodes.append(total)
        return nodes[-1]


class ResidualReduction(nn.Module):
    """The benchmark's reduction: a ResNet basic block at stride 2 (He et al., CVPR 2016).

    Main path ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN; shortcut AvgPool2d(2, 2) then a
    1x1 convolution; no activation after the sum. The shortcut pools with ``ceil_mode`` so
    that odd feature maps (e.g. 7x7 from a 28x28 input) halve to the same size as the strided
    convolution; on even sizes, the benchmark's only case, this is identical to the original.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, 2)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class Skeleton(NamedTuple):
    """The parts of an NB201 network, built in this order (which fixes the seeded weights).

    ``layers`` are the cells and the two reductions in forward order; a network stores the
    parts under its own attribute names, which are its state-dict keys.
    """

    stem: nn.Module
    layers: list[nn.Module]
    lastact: nn.Module
    pool: nn.Module
    classifier: nn.Module


def nb201_skeleton(
    in_channels: int,
    num_classes: int,
    make_cell: Callable[[int], nn.Module],
    channels: int = 16,
    cells_per_stage: int = 5,
    stem: bool = True,
) -> Skeleton:
    """The NAS-Bench-201 skeleton around ``make_cell(width)``: one definition of the stem,
    the stages and the head for every network of the space (fixed, mixed or pruning cells).

    ``stem=False`` puts an identity in the stem's place (TE-NAS's thin linear-region network
    feeds its 1-channel input straight to the first cell).

    Raises:
        ValueError: for a non-positive size.
    """
    sizes = {
        "in_channels": in_channels,
        "num_classes": num_classes,
        "channels": channels,
        "cells_per_stage": cells_per_stage,
    }
    bad = {k: v for k, v in sizes.items() if v <= 0}
    if bad:
        raise ValueError(f"NB201 network sizes must be positive, got {bad}")
    first: nn.Module = nn.Identity()
    if stem:
        first = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
    layers: list[nn.Module] = []
    width = channels
    for stage in range(3):
        if stage > 0:
            layers.append(ResidualReduction(width, 2 * width))
            width *= 2
        layers.extend(make_cell(width) for _ in range(cells_per_stage))
    lastact = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(inplace=False))
    return Skeleton(first, layers, lastact, nn.AdaptiveAvgPool2d(1), nn.Linear(width, num_classes))


def classify(
    features: torch.Tensor, lastact: nn.Module, pool: nn.Module, head: nn.Module
) -> torch.Tensor:
    """The skeleton's head on the last cell's output: BN-ReLU, global pooling, classifier."""
    return head(torch.flatten(pool(lastact(features)), 1))


class NB201Network(nn.Module):
    """The NAS-Bench-201 network for one cell (Dong & Yang, ICLR 2020).

    Args:
        cell: three lists of operation names; ``cell[j - 1][i]`` is the operation on edge
            ``j <- i``, e.g. ``[["nor_conv_3x3"], ["skip_connect", "none"], [...3 ops]]``.
        in_channels: channels of the input image.
        num_classes: outputs of the linear classifier.
        channels: C, the width of the first stage (the benchmark uses 16).
        cells_per_stage: N, cells in each of the three stages (the benchmark uses 5).

    Raises:
        ValueError: for an unknown operation, a malformed cell or a non-positive size.
    """

    def __init__(
        self,
        cell: Sequence[Sequence[str]],
        in_channels: int,
        num_classes: int,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> None:
        super().__init__()
        cell = [[str(op) for op in node] for node in cell]
        self.cell = cell
        parts = nb201_skeleton(
            in_channels,
            num_classes,
            lambda width: NB201Cell(cell, width),
            channels=channels,
            cells_per_stage=cells_per_stage,
        )
        self.stem = parts.stem
        self.cells = nn.Sequential(*parts.layers)
        self.lastact = parts.lastact
        self.global_pooling = parts.pool
        self.classifier = parts.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.cells(self.stem(x))
        return classify(features, self.lastact, self.global_pooling, self.classifier)
