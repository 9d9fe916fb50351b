"""The networks of the ``mobilenet`` space: inverted-residual (MBConv) blocks in stages.

The skeleton is MobileNetV2's (Sandler et al., CVPR 2018) as ProxylessNAS (Cai et al., ICLR
2019), MnasNet (Tan et al., CVPR 2019) and Once-for-All (Cai et al., ICLR 2020) search it: a
3x3 convolution stem, one fixed MBConv block (expansion 1, 3x3, 16 channels), the searched
stages of MBConv blocks, then a 1x1 convolution head, global average pooling and a linear
classifier. Each :class:`MBConv` is 1x1 expansion (absent at expansion 1), kxk depthwise
convolution (carrying the block's stride), optional squeeze-and-excitation (MobileNetV3's:
reduction to a quarter of the expanded channels, hard-sigmoid gate) and a linear 1x1
projection, with a residual connection when the stride is 1 and the channels match.
BatchNorm follows every convolution.

The network is given as plain numbers (channels, strides, one dict per block), which
:class:`archsearch.space.mobilenet.MobileNetSpace` computes from an architecture; nothing
here knows about decisions. This module imports only ``torch``: a model exported by
archsearch must load in plain PyTorch, with no archsearch on the reader's path. The forward
pass has no data-dependent control flow, so ``torch.export.export`` traces it.

:class:`MobileNetNetwork` is ``stem -> first -> blocks -> head`` and nothing else, so the
latency units of the space (each a fresh :class:`ConvBNAct`, :class:`MBConv` or
:class:`Head`) are exactly the network's children, in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

#: the activations a network may use: MobileNetV2's ReLU6 or MobileNetV3's hard-swish
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu6": nn.ReLU6, "hswish": nn.Hardswish}


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, never below ``divisor`` or
    below 90% of ``value`` (MobileNetV2's ``_make_divisible``, used by every network of this
    family so that channel counts suit vector units)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; activations: {list(ACTIVATIONS)}") from None


class ConvBNAct(nn.Sequential):
    """Convolution (no bias, 'same' padding) -> BatchNorm -> activation (``None``: linear)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: str | None = "relu6",
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(_activation(activation))
        super().__init__(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel, self.stride = kernel, stride


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., CVPR 2018) as MobileNetV3 places it: after the
    depthwise convolution, ``channels -> squeeze -> channels`` 1x1 convolutions with biases
    on the pooled features, ReLU between, a hard-sigmoid gate (cheaper than a sigmoid on
    mobile hardware, Howard et al., ICCV 2019)."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.channels, self.squeeze = channels, squeeze
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class MBConv(nn.Module):
    """An inverted-residual block (MobileNetV2, Fig. 3b), optionally with SE (MnasNet).

    Hyper-parameters are attributes (``in_channels``, ``out_channels``, ``kernel``,
    ``expansion``, ``stride``, ``se``, ``mid_channels``, ``use_residual``) so that a
    weight-sharing supernet can read and slice them. Parts: ``expand`` (1x1 conv-BN-act, or
    ``None`` at expansion 1, where MobileNetV2 has none), ``depthwise`` (kxk, the stride),
    ``se`` (``None`` when off), ``project`` (1x1 conv-BN, linear: MobileNetV2 sec. 3.2 shows
    a nonlinearity on the narrow output loses information).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        expansion: int,
        stride: int = 1,
        se: bool | int = False,
        activation: str = "relu6",
    ) -> None:
        super().__init__()
        if kernel % 2 == 0 or expansion < 1 or stride not in (1, 2):
            raise ValueError(
                f"MBConv needs an odd kernel, expansion >= 1 and stride 1 or 2, got kernel "
                f"{kernel}, expansion {expansion}, stride {stride}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel, self.expansion, self.stride = kernel, expansion, stride
        self.mid_channels = in_channels * expansion
        self.activation = activation
        self.use_residual = stride == 1 and in_channels == out_channels
        mid = self.mid_channels
        self.expand = (
            ConvBNAct(in_channels, mid, 1, activation=activation) if expansion != 1 else None
        )
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, groups=mid, activation=activation)
        self.se = SqueezeExcite(mid, make_divisible(mid / 4)) if se else None
        self.project = ConvBNAct(mid, out_channels, 1, activation=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else self.expand(x)
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.use_residual else y


class Head(nn.Module):
    """1x1 conv-BN-act to ``channels``, global average pooling, a linear classifier."""

    def __init__(
        self, in_channels: int, channels: int, num_classes: int, activation: str = "relu6"
    ) -> None:
        super().__init__()
        self.in_channels, self.channels, self.num_classes = in_channels, channels, num_classes
        self.conv = ConvBNAct(in_channels, channels, 1, activation=activation)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(x).mean((2, 3)))


class MobileNetNetwork(nn.Module):
    """``stem -> first -> blocks -> head``, built from plain numbers.

    ``blocks`` holds one mapping per searched block with the keyword arguments of
    :class:`MBConv` (``in_channels``, ``out_channels``, ``kernel``, ``expansion``,
    ``stride``, ``se``); the activation is the network's.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        stem_channels: int,
        stem_stride: int,
        first_channels: int,
        blocks: Sequence[Mapping[str, Any]],
        head_channels: int,
        activation: str = "relu6",
    ) -> None:
        super().__init__()
        self.stem = ConvBNAct(in_channels, stem_channels, 3, stem_stride, activation=activation)
        self.first = MBConv(stem_channels, first_channels, 3, 1, 1, False, activation)
        self.blocks = nn.Sequential(*(MBConv(**b, activation=activation) for b in blocks))
        last = self.blocks[-1].out_channels if len(self.blocks) else first_channels
        self.head = Head(last, head_channels, num_classes, activation)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, before the head."""
        return self.blocks(self.first(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
