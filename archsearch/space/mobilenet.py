"""The stage-wise MobileNet space of ProxylessNAS, MnasNet and Once-for-All.

A network is MobileNetV2's skeleton (:mod:`archsearch.space.mobilenet_network`): a 3x3
stem, a fixed first block (MBConv, expansion 1, 3x3, 16 channels), ``S`` searched stages of
inverted-residual (MBConv) blocks, a 1x1 convolution head, pooling and a classifier. What
is searched is what Once-for-All's elastic network varies (Cai et al., ICLR 2020, sec. 3.1),
plus MnasNet's per-block squeeze-and-excitation (Tan et al., CVPR 2019) and a global width
multiplier (MobileNetV2's, Sandler et al. CVPR 2018)::

    width            channel multiplier of every layer (channels rounded to multiples of 8)
    s{i}.depth       blocks in stage i (1-based)
    s{i}.b{j}.kernel     depthwise kernel of block j (0-based) of stage i: 3, 5 or 7
    s{i}.b{j}.expand     expansion ratio: 3, 4 or 6
    s{i}.b{j}.se         squeeze-and-excitation: 0 or 1

Choices are numbers (``se`` is 0/1 rather than a bool: tables and unit keys write it as a
number, and ``True == 1`` would make a bool choice compare equal to an int anyway).

**Inactive blocks and canonical form.** Every architecture assigns all ``max_depth`` block
positions of a stage, but only the first ``depth`` of them exist. So that equal networks
are equal architectures (a strategy never evaluates one twice, a study's dedupe works), the
space is *constrained* to canonical architectures, whose inactive blocks hold their first
choices, as define-by-run spaces are (:mod:`archsearch.space.define_by_run`);
:meth:`MobileNetSpace.canonical` maps any assignment there, :meth:`~MobileNetSpace.size`
counts distinct networks, ``sample`` and ``mutate`` only return canonical members, and the
one-hot encoding leaves an inactive block's rows at zero. Decisions are ordered so that a
stage's depth comes before its blocks, which lets :meth:`~MobileNetSpace.allowed` guide
controllers that sample decision by decision (ENAS) to canonical members directly.

**Strides follow the input.** The nominal schedule is MobileNetV2's: the stem and the first
block of every stage halve the side (total stride 32, 7x7 features at 224 pixels). On small
inputs that would leave a 1x1 map, so a stem on an input of at most 64 pixels keeps
stride 1 (as CIFAR versions of MobileNetV2 do) and a stage keeps stride 1 when halving
would leave fewer than :data:`MIN_FEATURE` pixels: with the default four stages, 28x28
gives 28-14-7-4-4 and 32x32 gives 32-16-8-4-4. The schedule is planned for each build's
input unless the ``resolution`` option fixes it.

**CPU-scale defaults.** Four stages of 24, 40, 80 and 112 channels (Once-for-All's
MobileNetV3 widths without its 160-channel stage), 1 to 3 blocks each (Once-for-All
searches 2 to 4 on ImageNet; the smaller range keeps a Fashion-MNIST epoch in seconds on one
core and still lets a stage be as shallow as MnasNet's), a 512-channel head (MobileNetV2's
1280 is sized for 1000 classes). ``min_depth`` and ``max_depth`` give Once-for-All's range.

**Latency units** (ProxylessNAS sec. 3.3, FBNet sec. 3.2): :meth:`latency_units` cuts a
network into stem, first block, each active searched block and head; their keys name the
context that sets their latency, e.g. ``"s2.b0:mbconv:k5:e4:se0:c24>40:s2:r14"``, and
:meth:`all_latency_units` lists every unit any architecture can hold, so that one measured
table prices the whole space. A block's context depends only on its position, its three
choices and the width, never on other blocks (a stage's first block always exists and its
output channels are fixed), which is what makes the sum over units a lookup and lets a
supernet ask :meth:`block_unit_key` without building anything. Keys are unique within one
space configuration (the activation is not in them): a table belongs to the configuration
it was measured for.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.errors import InvalidArchitectureError
from archsearch.space.base import Architecture, Choice, Decision
from archsearch.space.conditional import ConditionalSpace
from archsearch.space.registry import SPACES

if TYPE_CHECKING:
    import torch

    from archsearch.hardware.units import Unit

#: a stride-2 layer is kept only while it leaves a feature map at least this many pixels wide
MIN_FEATURE = 4
#: inputs up to this side keep a stride-1 stem (CIFAR-style); larger ones halve at the stem
SMALL_INPUT = 64
#: the fields of one block, in decision order
BLOCK_FIELDS = ("kernel", "expand", "se")
SE_CHOICES = (0, 1)
ACTIVATIONS = ("relu6", "hswish")

_BLOCK_STRING = re.compile(r"k(\d+)e(\d+)(se)?")


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNetV2's channel rounding (the copy in :mod:`~archsearch.space.mobilenet_network`
    is kept apart so that exported networks need no archsearch)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def depth_label(stage: int) -> str:
    return f"s{stage}.depth"


def block_label(stage: int, block: int, field: str) -> str:
    """``block_label(2, 0, "kernel") == "s2.b0.kernel"`` (stages from 1, blocks from 0)."""
    return f"s{stage}.b{block}.{field}"


def _halve(size: int, stride: int) -> int:
    return -(-size // stride)  # "same" padding, odd kernel: ceil(size / stride)


def _size_text(size: tuple[int, int]) -> str:
    return str(size[0]) if size[0] == size[1] else f"{size[0]}x{size[1]}"


@dataclass(frozen=True)
class BlockContext:
    """Where a block position sits in a network of one width on one input: what it receives
    (channels, ``input_size``) and what it does to it (``out_channels``, ``stride``)."""

    stage: int
    block: int
    in_channels: int
    out_channels: int
    stride: int
    input_size: tuple[int, int]

    def key(self, kernel: int, expansion: int, se: int) -> str:
        return (
            f"s{self.stage}.b{self.block}:mbconv:k{kernel}:e{expansion}:se{int(se)}:"
            f"c{self.in_channels}>{self.out_channels}:s{self.stride}:r{_size_text(self.input_size)}"
        )


@dataclass(frozen=True)
class Layout:
    """Channels, strides and feature sizes of every layer for one width and input shape."""

    in_channels: int
    input_size: tuple[int, int]
    stem_channels: int
    stem_stride: int
    first_size: tuple[int, int]
    first_channels: int
    blocks: tuple[tuple[BlockContext, ...], ...]  # [stage - 1][block]
    head_in_channels: int
    head_channels: int
    head_size: tuple[int, int]


def _module(kind: str, **kwargs: Any) -> torch.nn.Module:
    """A fresh network piece (module level, so that units pickle)."""
    from archsearch.space import mobilenet_network

    return getattr(mobilenet_network, kind)(**kwargs)


@SPACES.register("mobilenet")
class MobileNetSpace(ConditionalSpace):
    """MobileNetV2-style stages of MBConv blocks: width, depths, kernels, expansions, SE.

    Options: ``widths`` (multipliers), ``stages`` (``[channels, stride]`` per searched
    stage at width 1, the stride being the nominal one), ``min_depth``/``max_depth``,
    ``kernels``, ``expansions``, ``stem_channels``, ``first_channels``, ``head_channels``
    (at width 1; the head grows with widths above 1 only, as in MobileNetV2),
    ``activation`` (``relu6``, MobileNetV2's, or ``hswish``, MobileNetV3's) and
    ``resolution`` (the input side the stride schedule is planned for; ``None``: each
    build's own input). See the module docstring for why the defaults are what they are.
    """

    inactive_reason = "belong to blocks beyond their stage's depth"

    capabilities = frozenset({"allowed", "build", "canonical", "latency_units"})

    constrained = True

    def __init__(
        self,
        widths: Sequence[float] = (0.75, 1.0, 1.25),
        stages: Sequence[Sequence[int]] = ((24, 2), (40, 2), (80, 2), (112, 2)),
        min_depth: int = 1,
        max_depth: int = 3,
        kernels: Sequence[int] = (3, 5, 7),
        expansions: Sequence[int] = (3, 4, 6),
        stem_channels: int = 16,
        first_channels: int = 16,
        head_channels: int = 512,
        activation: str = "relu6",
        resolution: int | None = None,
    ) -> None:
        self.widths = tuple(float(w) for w in widths)
        try:
            self.stages = tuple((int(c), int(s)) for c, s in stages)
        except (TypeError, ValueError):
            raise InvalidArchitectureError(
                f"stages must be [channels, stride] pairs, got {stages!r}"
            ) from None
        self.min_depth, self.max_depth = int(min_depth), int(max_depth)
        self.kernels = tuple(int(k) for k in kernels)
        self.expansions = tuple(int(e) for e in expansions)
        self.stem_channels, self.first_channels = int(stem_channels), int(first_channels)
        self.head_channels = int(head_channels)
        self.activation = activation
        self.resolution = None if resolution is None else int(resolution)
        problems = []
        if not self.widths or any(not w > 0 for w in self.widths):
            problems.append(f"widths must be positive, got {list(widths)}")
        if not self.stages or any(c <= 0 or s not in (1, 2) for c, s in self.stages):
            problems.append(f"stages need channels > 0 and stride 1 or 2, got {stages!r}")
        if not 1 <= self.min_depth <= self.max_depth:
            problems.append(
                f"need 1 <= min_depth <= max_depth, got {min_depth}, {max_depth} (a stage "
                "always keeps its first block, so that the blocks after it see fixed inputs)"
            )
        if not self.kernels or any(k < 1 or k % 2 == 0 for k in self.kernels):
            problems.append(f"kernels must be odd and positive, got {list(kernels)}")
        if not self.expansions or any(e < 1 for e in self.expansions):
            problems.append(f"expansions must be >= 1, got {list(expansions)}")
        if min(self.stem_channels, self.first_channels, self.head_channels) <= 0:
            problems.append("stem_channels, first_channels and head_channels must be positive")
        if activation not in ACTIVATIONS:
            problems.append(f"unknown activation {activation!r}; activations: {list(ACTIVATIONS)}")
        if self.resolution is not None and self.resolution <= 0:
            problems.append(f"resolution must be positive or None, got {resolution!r}")
        if problems:
            raise InvalidArchitectureError("mobilenet space: " + "; ".join(problems))
        decisions = [Decision("width", self.widths)]
        for stage in range(1, len(self.stages) + 1):
            decisions.append(Decision(depth_label(stage), self.depths))
            for block in range(self.max_depth):
                decisions += [
                    Decision(block_label(stage, block, "kernel"), self.kernels),
                    Decision(block_label(stage, block, "expand"), self.expansions),
                    Decision(block_label(stage, block, "se"), SE_CHOICES),
                ]
        super().__init__(decisions)
        self._layouts: dict[tuple[float, tuple[int, ...]], Layout] = {}

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(range(self.min_depth, self.max_depth + 1))

    # ----------------------------------------------------- activity and canonical form
    def active(self, arch: Mapping[str, Choice]) -> tuple[str, ...]:
        """The labels that shape the network of ``arch``: the width, every depth and the
        decisions of the blocks within each stage's depth."""
        arch = self._full(arch)
        labels = ["width"]
        for stage in range(1, len(self.stages) + 1):
            labels.append(depth_label(stage))
            for block in range(int(arch[depth_label(stage)])):
                labels += [block_label(stage, block, f) for f in BLOCK_FIELDS]
        return tuple(labels)

    def allowed(self, decision_label: str, partial: Mapping[str, Choice]) -> list[bool]:
        """Which choices keep ``partial`` canonical, given the decisions before it: an
        inactive block (its position at or past the stage's depth) allows its first choice
        only."""
        decision = self.decision(decision_label)
        parts = decision_label.split(".")
        if len(parts) == 3:
            stage, block = int(parts[0][1:]), int(parts[1][1:])
            depth = int(partial.get(depth_label(stage), self.depths[0]))
            if block >= depth:
                return [i == 0 for i in range(len(decision.choices))]
        return [True] * len(decision.choices)

    # ------------------------------------------------------------- exploration
    def _block_choices(self) -> list[tuple[Choice, ...]]:
        return list(itertools.product(self.kernels, self.expansions, SE_CHOICES))

    def size(self) -> int:
        """Distinct networks: widths x, per stage, the sum over depths d of (choices per
        block)^d."""
        per_block = len(self._block_choices())
        per_stage = sum(per_block**d for d in self.depths)
        return len(self.widths) * per_stage ** len(self.stages)

    def enumerate(self) -> Iterator[Architecture]:
        """Every canonical architecture once (width, then stage by stage, shallow first)."""
        per_block = self._block_choices()
        per_stage = [
            [(d, blocks) for d in self.depths for blocks in itertools.product(per_block, repeat=d)]
            for _ in self.stages
        ]
        for width in self.widths:
            for stages in itertools.product(*per_stage):
                assignment: dict[str, Choice] = {"width": width}
                for stage, (depth, blocks) in enumerate(stages, start=1):
                    assignment[depth_label(stage)] = depth
                    for block, values in enumerate(blocks):
                        for field, value in zip(BLOCK_FIELDS, values, strict=True):
                            assignment[block_label(stage, block, field)] = value
                yield self.canonical(assignment)

    # ------------------------------------------------------------- string format
    def to_string(self, arch: Architecture) -> str:
        """``w1.0|k3e4,k5e6se|k3e3|...``: the width, then one ``|`` group per stage listing
        its active blocks as kernel, expansion and an ``se`` suffix when SE is on."""
        arch = self.canonical(arch)
        groups = [f"w{arch['width']!r}"]
        for stage in range(1, len(self.stages) + 1):
            blocks = []
            for block in range(int(arch[depth_label(stage)])):
                k, e, se = (arch[block_label(stage, block, f)] for f in BLOCK_FIELDS)
                blocks.append(f"k{k}e{e}" + ("se" if se else ""))
            groups.append(",".join(blocks))
        return "|".join(groups)

    def from_string(self, text: str) -> Architecture:
        text = text.strip()
        if text.startswith("{"):
            return super().from_string(text)
        groups = text.split("|")
        example = "w1.0|k3e4,k5e6se|k3e3|k7e6,k3e3|k5e4"
        if len(groups) != len(self.stages) + 1 or not groups[0].startswith("w"):
            raise InvalidArchitectureError(
                f"not a mobilenet architecture: {text!r} (expected the width and "
                f"{len(self.stages)} stages, e.g. {example!r}, or a JSON object of decisions)"
            )
        try:
            assignment: dict[str, Choice] = {"width": float(groups[0][1:])}
        except ValueError:
            raise InvalidArchitectureError(f"bad width {groups[0]!r} in {text!r}") from None
        for stage, group in enumerate(groups[1:], start=1):
            blocks = group.split(",") if group else []
            assignment[depth_label(stage)] = len(blocks)
            if len(blocks) > self.max_depth:
                raise InvalidArchitectureError(
                    f"stage {stage} of {text!r} has {len(blocks)} blocks; depths: "
                    f"{list(self.depths)}"
                )
            for block, token in enumerate(blocks):
                match = _BLOCK_STRING.fullmatch(token)
                if match is None:
                    raise InvalidArchitectureError(
                        f"bad block {token!r} in {text!r} (expected k<kernel>e<expansion>, "
                        f"with an 'se' suffix for squeeze-and-excitation, e.g. 'k5e6se')"
                    )
                kernel, expansion, se = int(match[1]), int(match[2]), int(bool(match[3]))
                for field, value in zip(BLOCK_FIELDS, (kernel, expansion, se), strict=True):
                    assignment[block_label(stage, block, field)] = value
        return self.make(self.canonical(assignment))

    # ---------------------------------------------------------------- encoding
    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        """One-hot per decision, with all-zero rows for the blocks beyond a stage's depth.

        Zero rows let a predictor tell "block absent" from "block with kernel 3"."""
        vector = super().encode(arch, kind)
        active = set(self.active(arch))
        start = 0
        for d in self.decisions:
            if d.label not in active:
                vector[start : start + len(d.choices)] = 0.0
            start += len(d.choices)
        return vector

    # ------------------------------------------------------------------ layout
    def strides(self, input_size: Sequence[int]) -> tuple[int, tuple[int, ...]]:
        """``(stem stride, stage strides)`` for an input of side ``input_size`` (H, W), or
        of the ``resolution`` option when set (see the module docstring)."""
        side = self.resolution if self.resolution is not None else min(input_size)
        stem = 2 if side > SMALL_INPUT else 1
        size = _halve(side, stem)
        strides = []
        for _, nominal in self.stages:
            stride = nominal if _halve(size, nominal) >= MIN_FEATURE else 1
            strides.append(stride)
            size = _halve(size, stride)
        return stem, tuple(strides)

    def layout(self, width: float, input_shape: Sequence[int]) -> Layout:
        """Channels, strides and sizes of every layer at ``width`` on ``(C, H, W)`` inputs."""
        if len(input_shape) != 3 or min(int(n) for n in input_shape) <= 0:
            raise InvalidArchitectureError(
                f"the mobilenet space builds for image inputs (C, H, W), got {tuple(input_shape)}"
            )
        self.decision("width").index(width)
        key = (float(width), tuple(int(n) for n in input_shape))
        cached = self._layouts.get(key)
        if cached is not None:
            return cached
        in_channels, height, breadth = key[1]
        stem_stride, stage_strides = self.strides((height, breadth))
        stem = make_divisible(self.stem_channels * width)
        first = make_divisible(self.first_channels * width)
        size = (_halve(height, stem_stride), _halve(breadth, stem_stride))
        first_size, channels, stages = size, first, []
        for stage, ((c, _), stride) in enumerate(
            zip(self.stages, stage_strides, strict=True), start=1
        ):
            out = make_divisible(c * width)
            blocks = []
            for block in range(self.max_depth):
                s = stride if block == 0 else 1
                blocks.append(BlockContext(stage, block, channels, out, s, size))
                size = (_halve(size[0], s), _halve(size[1], s))
                channels = out
            stages.append(tuple(blocks))
        head = make_divisible(self.head_channels * max(1.0, width))
        layout = Layout(
            in_channels, (height, breadth), stem, stem_stride, first_size, first,
            tuple(stages), channels, head, size,
        )  # fmt: skip
        self._layouts[key] = layout
        return layout

    # ------------------------------------------------------------- latency units
    def block_unit_key(
        self,
        stage: int,
        block: int,
        kernel: int,
        expansion: int,
        se: int,
        width: float,
        input_shape: Sequence[int],
    ) -> str:
        """The latency unit key of one block choice at one position, without building an
        architecture (what a one-shot supernet needs to price its sampled paths)."""
        for value, label in ((kernel, "kernel"), (expansion, "expand"), (se, "se")):
            self.decision(block_label(stage, block, label)).index(value)
        return self.layout(width, input_shape).blocks[stage - 1][block].key(kernel, expansion, se)

    def _stem_unit(self, layout: Layout) -> Unit:
        from archsearch.hardware.units import Unit

        key = (
            f"stem:conv3:c{layout.in_channels}>{layout.stem_channels}:s{layout.stem_stride}:"
            f"r{_size_text(layout.input_size)}"
        )
        build = functools.partial(
            _module, "ConvBNAct", in_channels=layout.in_channels,
            out_channels=layout.stem_channels, kernel=3, stride=layout.stem_stride,
            activation=self.activation,
        )  # fmt: skip
        return Unit(key, (layout.in_channels, *layout.input_size), build)

    def _first_unit(self, layout: Layout) -> Unit:
        from archsearch.hardware.units import Unit

        key = (
            f"first:mbconv:k3:e1:se0:c{layout.stem_channels}>{layout.first_channels}:s1:"
            f"r{_size_text(layout.first_size)}"
        )
        build = functools.partial(
            _module, "MBConv", in_channels=layout.stem_channels,
            out_channels=layout.first_channels, kernel=3, expansion=1, stride=1, se=False,
            activation=self.activation,
        )  # fmt: skip
        return Unit(key, (layout.stem_channels, *layout.first_size), build)

    def _block_unit(self, context: BlockContext, kernel: int, expansion: int, se: int) -> Unit:
        from archsearch.hardware.units import Unit

        build = functools.partial(
            _module, "MBConv", **self._block_kwargs(context, kernel, expansion, se)
        )
        return Unit(
            context.key(kernel, expansion, se), (context.in_channels, *context.input_size), build
        )

    def _head_unit(self, layout: Layout, num_classes: int) -> Unit:
        from archsearch.hardware.units import Unit

        key = (
            f"head:conv1:c{layout.head_in_channels}>{layout.head_channels}:pool:"
            f"fc{num_classes}:r{_size_text(layout.head_size)}"
        )
        build = functools.partial(
            _module, "Head", in_channels=layout.head_in_channels,
            channels=layout.head_channels, num_classes=num_classes, activation=self.activation,
        )  # fmt: skip
        return Unit(key, (layout.head_in_channels, *layout.head_size), build)

    def fixed_latency_units(
        self, width: float, input_shape: Sequence[int], num_classes: int
    ) -> list[Unit]:
        """The units every network of ``width`` holds whatever its blocks (stem, first
        block, head): with :meth:`block_unit_key`, what a supernet needs to price a
        distribution over architectures."""
        layout = self.layout(float(width), input_shape)
        return [
            self._stem_unit(layout), self._first_unit(layout), self._head_unit(layout, num_classes)
        ]  # fmt: skip

    def latency_units(
        self, arch: Architecture, input_shape: Sequence[int], num_classes: int
    ) -> list[Unit]:
        """The network of ``arch`` cut into stem, first block, each active block and head,
        in order; the units' modules, run one after another, compute the network."""
        arch = self.validate(arch)
        stem, first, head = self.fixed_latency_units(arch["width"], input_shape, num_classes)
        layout = self.layout(float(arch["width"]), input_shape)
        units = [stem, first]
        for context, k, e, se in self._blocks_of(arch, layout):
            units.append(self._block_unit(context, k, e, se))
        units.append(head)
        return units

    def all_latency_units(self, input_shape: Sequence[int], num_classes: int) -> list[Unit]:
        """Every distinct unit (by key) that a network of this space can hold on
        ``input_shape``, over every width: measure these once and every architecture's
        latency is a sum of lookups."""
        units: dict[str, Unit] = {}
        for width in self.widths:
            layout = self.layout(width, input_shape)
            found = [self._stem_unit(layout), self._first_unit(layout)]
            for contexts in layout.blocks:
                for context in contexts:
                    for k, e, se in self._block_choices():
                        found.append(self._block_unit(context, int(k), int(e), int(se)))
            found.append(self._head_unit(layout, num_classes))
            for unit in found:
                units.setdefault(unit.key, unit)
        return list(units.values())

    # ----------------------------------------------------------------- building
    def _blocks_of(
        self, arch: Architecture, layout: Layout
    ) -> list[tuple[BlockContext, int, int, int]]:
        result = []
        for stage, contexts in enumerate(layout.blocks, start=1):
            for block in range(int(arch[depth_label(stage)])):
                k, e, se = (int(arch[block_label(stage, block, f)]) for f in BLOCK_FIELDS)
                result.append((contexts[block], k, e, se))
        return result

    @staticmethod
    def _block_kwargs(context: BlockContext, kernel: int, expansion: int, se: int) -> dict:
        return {
            "in_channels": context.in_channels,
            "out_channels": context.out_channels,
            "kernel": kernel,
            "expansion": expansion,
            "stride": context.stride,
            "se": bool(se),
        }

    def build(
        self, arch: Architecture, input_shape: Sequence[int], num_classes: int
    ) -> torch.nn.Module:
        """The network of ``arch`` for ``(C, H, W)`` inputs (strides planned for its side)."""
        from archsearch.space.mobilenet_network import MobileNetNetwork

        arch = self.validate(arch)
        layout = self.layout(float(arch["width"]), input_shape)
        blocks = [self._block_kwargs(*b) for b in self._blocks_of(arch, layout)]
        return MobileNetNetwork(
            in_channels=layout.in_channels,
            num_classes=num_classes,
            stem_channels=layout.stem_channels,
            stem_stride=layout.stem_stride,
            first_channels=layout.first_channels,
            blocks=blocks,
            head_channels=layout.head_channels,
            activation=self.activation,
        )
