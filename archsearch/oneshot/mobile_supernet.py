"""A weight-sharing supernet over the ``mobilenet`` space: one elastic MBConv per block position.

Weight sharing is Once-for-All's (Cai et al., ICLR 2020, sec. 3.2): every searched block
position holds one :class:`ElasticMBConv` sized for the largest choice, and a choice uses a
part of it. The depthwise kernel is the largest kernel's weight and a smaller kernel its
centre crop (OFA adds learned kernel-transformation matrices; plain cropping is its
simpler baseline); an expansion ``e`` uses the first ``in * e`` channels of the expanded
layer (the expansion, depthwise, SE and projection weights are sliced alike); the SE
weights are shared and applied only when the path has SE. Depth is elastic too: a stage
runs its first ``depth`` blocks and skips the rest (a stage's first block always runs, as
the space requires), so a deeper network is a shallower one plus blocks.

**Single path.** A forward pass runs one architecture, given as a path (:meth:`path_of`,
or :meth:`set_arch` once for every later ``forward(x)``): a step costs one network's
compute, and parameters off the path get no gradient. A path is the one-shot package's
:data:`~archsearch.oneshot.supernet.Path` with two kinds: ``"block"`` (one row per block
position, columns :attr:`MobileNetSupernet.choices`, the joint ``(kernel, expansion, se)``
choice) and ``"depth"`` (one row per stage, columns the space's depths). When a kind
carries ``weights`` (straight-through gates, one-hot in value), the sampled block's branch
is multiplied by its gate, and a block beyond position 0 also by the sum of the gates of
the depths that keep it, which is how the architecture gradient reaches the logits.

**BatchNorm is shared per position** (sliced to the channels a choice uses), as in OFA:
per-choice BN would multiply the BN layers by 18 and leave each with a fraction of the
batches; the running statistics describe a mixture of paths either way, which is why
scoring recalibrates them per path (SPOS sec. 3.3; :func:`~archsearch.oneshot.runtime.
recalibrate_batch_norm`) and the diagnostics use batch statistics.

The width multiplier is fixed per supernet (option ``width``, default 1.0): the latency
table prices each width separately and OFA's elastic width needs channel sorting, which a
CPU-scale search does not pay for. :meth:`MobileNetSupernet.subnet` returns the stand-alone
``space.build(arch)`` network carrying the supernet's weights, which computes the same
function as the supernet on that path.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.oneshot.supernet import EdgeChoice, Path, Supernet
from archsearch.space.base import Architecture
from archsearch.space.mobilenet import (
    BLOCK_FIELDS,
    SE_CHOICES,
    MobileNetSpace,
    block_label,
    depth_label,
)
from archsearch.space.mobilenet_network import (
    ACTIVATIONS,
    ConvBNAct,
    Head,
    MBConv,
    make_divisible,
)


def sliced_batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d, channels: int) -> torch.Tensor:
    """``bn`` restricted to its first ``channels`` channels, running statistics included
    (updated in place on the slice, as :class:`torch.nn.BatchNorm2d` updates them)."""
    factor = 0.0
    if bn.training and bn.track_running_stats:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch = bn.training or bn.running_mean is None
    return F.batch_norm(
        x,
        None if bn.running_mean is None else bn.running_mean[:channels],
        None if bn.running_var is None else bn.running_var[:channels],
        bn.weight[:channels],
        bn.bias[:channels],
        use_batch,
        factor,
        bn.eps,
    )


def _copy_bn(target: nn.BatchNorm2d, source: nn.BatchNorm2d, channels: int) -> None:
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(target, name).copy_(getattr(source, name)[:channels])
        target.num_batches_tracked.copy_(source.num_batches_tracked)


class ElasticMBConv(nn.Module):
    """An MBConv block (:class:`~archsearch.space.mobilenet_network.MBConv`) whose kernel,
    expansion and SE are chosen per forward pass, all choices sharing one set of weights
    sized for the largest (see the module docstring). ``forward`` returns the block's
    branch; the caller adds the residual (:attr:`use_residual`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        kernels: Sequence[int],
        expansions: Sequence[int],
        activation: str = "relu6",
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.max_kernel, self.max_expansion = max(kernels), max(expansions)
        self.use_residual = stride == 1 and in_channels == out_channels
        mid = in_channels * self.max_expansion
        self.expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(mid)
        k = self.max_kernel
        self.depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(mid)
        self.se_reduce = nn.Conv2d(mid, make_divisible(mid / 4), 1)
        self.se_expand = nn.Conv2d(make_divisible(mid / 4), mid, 1)
        self.project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_channels)
        self.act = ACTIVATIONS[activation]()

    def kernel_weight(self, kernel: int) -> torch.Tensor:
        """The centre ``kernel x kernel`` crop of the largest depthwise kernel."""
        start = (self.max_kernel - kernel) // 2
        return self.depthwise_conv.weight[:, :, start : start + kernel, start : start + kernel]

    def forward(self, x: torch.Tensor, kernel: int, expansion: int, se: int) -> torch.Tensor:
        mid = self.in_channels * expansion
        if expansion == 1:  # MBConv has no expansion layer then
            y = x
        else:
            y = F.conv2d(x, self.expand_conv.weight[:mid])
            y = self.act(sliced_batch_norm(y, self.expand_bn, mid))
        weight = self.kernel_weight(kernel)[:mid]
        y = F.conv2d(y, weight, None, self.stride, kernel // 2, 1, mid)
        y = self.act(sliced_batch_norm(y, self.depthwise_bn, mid))
        if se:
            squeeze = make_divisible(mid / 4)
            s = y.mean((2, 3), keepdim=True)
            s = F.relu(
                F.conv2d(s, self.se_reduce.weight[:squeeze, :mid], self.se_reduce.bias[:squeeze])
            )
            s = F.conv2d(s, self.se_expand.weight[:mid, :squeeze], self.se_expand.bias[:mid])
            y = y * F.hardsigmoid(s)
        y = F.conv2d(y, self.project_conv.weight[:, :mid])
        return sliced_batch_norm(y, self.project_bn, self.out_channels)

    def copy_into(self, block: MBConv) -> None:
        """Write this block's weights for ``block``'s choice into ``block``."""
        k, mid = block.kernel, block.mid_channels
        with torch.no_grad():
            if block.expand is not None:
                block.expand[0].weight.copy_(self.expand_conv.weight[:mid])
                _copy_bn(block.expand[1], self.expand_bn, mid)
            block.depthwise[0].weight.copy_(self.kernel_weight(k)[:mid])
            _copy_bn(block.depthwise[1], self.depthwise_bn, mid)
            if block.se is not None:
                squeeze = block.se.squeeze
                block.se.reduce.weight.copy_(self.se_reduce.weight[:squeeze, :mid])
                block.se.reduce.bias.copy_(self.se_reduce.bias[:squeeze])
                block.se.expand.weight.copy_(self.se_expand.weight[:mid, :squeeze])
                block.se.expand.bias.copy_(self.se_expand.bias[:mid])
            block.project[0].weight.copy_(self.project_conv.weight[:, :mid])
            _copy_bn(block.project[1], self.project_bn, block.out_channels)


class MobileNetSupernet(Supernet):
    """Every network of one width of a :class:`~archsearch.space.mobilenet.MobileNetSpace`
    (see the module docstring). ``space_options`` are the space's options; ``input_size``
    (H, W) fixes the stride schedule, as the space plans it for that input."""

    skip_op = "skip_connect"
    #: a block position beyond its stage's depth is an identity: counted as a skip
    parameter_free_ops = ("skip_connect",)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: Sequence[int],
        width: float = 1.0,
        **space_options: Any,
    ) -> None:
        super().__init__()
        self.space = MobileNetSpace(**space_options)
        if float(width) not in self.space.widths:
            raise ArchsearchError(
                f"supernet width {width!r} is not a width of the space: {list(self.space.widths)}"
            )
        self.width = float(width)
        self.num_classes = int(num_classes)
        self.input_shape = (int(in_channels), *(int(n) for n in input_size))
        layout = self.space.layout(self.width, self.input_shape)
        #: the joint block choices, in column order of the ``block`` logits
        self.choices: tuple[tuple[int, int, int], ...] = tuple(
            itertools.product(self.space.kernels, self.space.expansions, SE_CHOICES)
        )
        self.operations = tuple(f"k{k}e{e}" + ("se" if se else "") for k, e, se in self.choices)
        self.depths = self.space.depths
        #: (stage from 1, block from 0) of each block position, in row order
        self.positions = tuple(
            (stage, block)
            for stage, contexts in enumerate(layout.blocks, start=1)
            for block in range(len(contexts))
        )
        self.edges = {
            "block": tuple(f"s{s}.b{b}" for s, b in self.positions),
            "depth": tuple(depth_label(s) for s in range(1, len(layout.blocks) + 1)),
        }
        activation = self.space.activation
        self.stem = ConvBNAct(
            in_channels, layout.stem_channels, 3, layout.stem_stride, activation=activation
        )
        self.first = MBConv(layout.stem_channels, layout.first_channels, 3, 1, 1, False, activation)
        self.blocks = nn.ModuleList(
            ElasticMBConv(
                context.in_channels, context.out_channels, context.stride,
                self.space.kernels, self.space.expansions, activation,
            )
            for contexts in layout.blocks
            for context in contexts
        )  # fmt: skip
        self.head = Head(layout.head_in_channels, layout.head_channels, num_classes, activation)
        self._space_options = {k: v for k, v in self.space.config().items() if k != "name"}
        self._init_alphas()
        self._path: Path | None = None

    def _init_alphas(self) -> None:
        # near uniform, not exactly tied (DARTS's 1e-3 * N(0, 1))
        self.alphas = nn.ParameterDict({
            "block": nn.Parameter(1e-3 * torch.randn(len(self.positions), len(self.choices))),
            "depth": nn.Parameter(1e-3 * torch.randn(len(self.edges["depth"]), len(self.depths))),
        })  # fmt: skip

    # ------------------------------------------------------------------ forward
    def set_arch(self, arch: Architecture) -> None:
        """Make ``forward(x)`` without a path run ``arch``."""
        self._path = self.path_of(arch)

    def forward(self, x: torch.Tensor, path: Path | None = None) -> torch.Tensor:
        path = self._path if path is None else path
        if path is None:
            raise ArchsearchError("no path: pass one to forward or call set_arch(arch) first")
        block, depth = path["block"], path["depth"]
        assert block.index is not None and depth.index is not None
        x = self.first(self.stem(x))
        for row, (stage, j) in enumerate(self.positions):
            stage_depth = self.depths[int(depth.index[stage - 1])]
            if j >= stage_depth:
                continue  # skipped: the identity
            choice = int(block.index[row])
            y = self.blocks[row](x, *self.choices[choice])
            if block.weights is not None:
                y = y * block.weights[row, choice]
            if j > 0 and depth.weights is not None:
                keeps = [c for c, d in enumerate(self.depths) if d > j]
                y = y * depth.weights[stage - 1, keeps].sum()
            x = x + y if self.blocks[row].use_residual else y
        return self.head(x)

    # -------------------------------------------------------- discrete interface
    def _check_width(self, arch: Architecture) -> None:
        if float(arch["width"]) != self.width:
            raise ArchsearchError(
                f"this supernet holds width {self.width} only, not {arch['width']!r}"
            )

    def path_of(self, arch: Architecture) -> dict[str, EdgeChoice]:
        arch = self.space.canonical(arch)
        self._check_width(arch)
        block = [
            self.choices.index(tuple(int(arch[block_label(s, b, f)]) for f in BLOCK_FIELDS))
            for s, b in self.positions
        ]
        depth = [self.depths.index(int(arch[label])) for label in self.edges["depth"]]
        return {"block": EdgeChoice(index=block), "depth": EdgeChoice(index=depth)}

    def arch_of(self, block_index: Sequence[int], depth_index: Sequence[int]) -> Architecture:
        """The canonical architecture of one choice per position and one depth per stage."""
        assignment: dict[str, Any] = {"width": self.width}
        for label, d in zip(self.edges["depth"], depth_index, strict=True):
            assignment[label] = self.depths[int(d)]
        for (s, b), c in zip(self.positions, block_index, strict=True):
            for field, value in zip(BLOCK_FIELDS, self.choices[int(c)], strict=True):
                assignment[block_label(s, b, field)] = value
        return self.space.make(self.space.canonical(assignment))

    def derive(self, weights: Mapping[str, np.ndarray]) -> Architecture:
        """Argmax per block position and per stage's depth, in canonical form."""
        return self.arch_of(
            np.argmax(np.asarray(weights["block"]), axis=1),
            np.argmax(np.asarray(weights["depth"]), axis=1),
        )

    def one_hot(self, arch: Architecture) -> dict[str, np.ndarray]:
        result = {}
        for kind, choice in self.path_of(arch).items():
            w = np.zeros(tuple(self.alphas[kind].shape), dtype=np.float32)
            w[np.arange(len(w)), list(choice.index)] = 1.0
            result[kind] = w
        return result

    def counted_operations(self, arch: Architecture) -> list[str]:
        """Per block position its choice, or ``skip_connect`` beyond the stage's depth."""
        path = self.path_of(arch)
        ops = []
        for row, (stage, j) in enumerate(self.positions):
            depth = self.depths[path["depth"].index[stage - 1]]
            ops.append(self.operations[path["block"].index[row]] if j < depth else self.skip_op)
        return ops

    def subnet(self, arch: Architecture) -> nn.Module:
        """``space.build(arch)`` with this supernet's weights (and BN statistics) for
        ``arch``: the stand-alone network of the path (Once-for-All's sub-network)."""
        arch = self.space.canonical(arch)
        self._check_width(arch)
        net = self.space.build(arch, self.input_shape, self.num_classes)
        net.stem.load_state_dict(self.stem.state_dict())
        net.first.load_state_dict(self.first.state_dict())
        net.head.load_state_dict(self.head.state_dict())
        path = self.path_of(arch)
        rows = [
            row
            for row, (stage, j) in enumerate(self.positions)
            if j < self.depths[path["depth"].index[stage - 1]]
        ]
        for row, block in zip(rows, net.blocks, strict=True):
            self.blocks[row].copy_into(block)
        return net.to(next(self.parameters()).device)

    def config(self) -> dict[str, Any]:
        return {
            "name": "mobilenet",
            "in_channels": self.input_shape[0],
            "num_classes": self.num_classes,
            "input_size": list(self.input_shape[1:]),
            "width": self.width,
            **self._space_options,
        }
