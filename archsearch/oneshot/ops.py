"""Candidate operations of the NAS-Bench-201 and DARTS cells.

Each table maps an operation name to a constructor ``(channels, stride, affine) -> Module``,
so a mixed operation, a supernet cell and a stand-alone cell all build their edges from one
definition. The NAS-Bench-201 operations follow Dong & Yang (ICLR 2020): ReLU-Conv-BN,
3x3 average pooling (padding not counted), identity and zero. The DARTS operations follow
Liu et al. (ICLR 2019, ``operations.py`` of the paper's code): separable convolutions are two
stacked ReLU-depthwise-pointwise-BN blocks, dilated convolutions one such block with dilation
2, and the identity becomes a factorized reduction at stride 2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

OpFactory = Callable[[int, int, bool], nn.Module]


class Zero(nn.Module):
    """The ``none`` operation: an all-zero output of the right shape (no edge)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BatchNorm, the convolution block of both cells."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int = 1,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU -> depthwise (dilated) conv -> pointwise conv -> BN (DARTS ``dil_conv``)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable blocks, the first one strided (DARTS ``sep_conv``)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset 1x1 stride-2 convolutions, concatenated.

    The offset branch pads one row and column first, so odd sizes (7x7 Fashion-MNIST maps)
    work too; for even sizes this is exactly DARTS's ``x[:, :, 1:, 1:]``.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class PoolBN(nn.Sequential):
    """Pooling followed by a BN without affine parameters, as DARTS's search model does so
    that parameter-free pooling outputs are on the scale of the convolutions'."""

    def __init__(self, pool: nn.Module, channels: int) -> None:
        super().__init__(pool, nn.BatchNorm2d(channels, affine=False))


def _avg(stride: int) -> nn.Module:
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


def _skip(c: int, stride: int, affine: bool) -> nn.Module:
    return Identity() if stride == 1 else FactorizedReduce(c, c, affine)


#: NAS-Bench-201's five operations, in the space's order (``archsearch.space.nb201``)
NB201_OPS: dict[str, OpFactory] = {
    "none": lambda c, s, a: Zero(s),
    "skip_connect": _skip,
    "nor_conv_1x1": lambda c, s, a: ReLUConvBN(c, c, 1, s, 0, affine=a),
    "nor_conv_3x3": lambda c, s, a: ReLUConvBN(c, c, 3, s, 1, affine=a),
    "avg_pool_3x3": lambda c, s, a: _avg(s),
}

#: DARTS's eight operations (``PRIMITIVES`` of the paper's code, same order)
DARTS_OPS: dict[str, OpFactory] = {
    "none": lambda c, s, a: Zero(s),
    "max_pool_3x3": lambda c, s, a: nn.MaxPool2d(3, stride=s, padding=1),
    "avg_pool_3x3": lambda c, s, a: _avg(s),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda c, s, a: SepConv(c, c, 3, s, 1, a),
    "sep_conv_5x5": lambda c, s, a: SepConv(c, c, 5, s, 2, a),
    "dil_conv_3x3": lambda c, s, a: DilConv(c, c, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda c, s, a: DilConv(c, c, 5, s, 4, 2, a),
}


def darts_search_op(name: str, channels: int, stride: int, affine: bool) -> nn.Module:
    """A DARTS operation as the search model builds it: pooling gets a BN (see PoolBN)."""
    op = DARTS_OPS[name](channels, stride, affine)
    if "pool" in name:
        op = PoolBN(op, channels)
    return op
