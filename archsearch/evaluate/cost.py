"""Evaluation by cost: the parameters and FLOPs of the network an architecture builds.

Costs need no data and no training, so a hardware-aware study gets them in milliseconds
and, combined with an accuracy (see :mod:`archsearch.evaluate.composite`), constrains or
trades off against them. Counting is :mod:`archsearch.hardware.cost`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.space.base import Architecture, SearchSpace

DEFAULT_INPUT_SHAPE = (3, 32, 32)


class NetworkEvaluator(Evaluator):
    """Base of the evaluators that build an architecture's network to cost it (``cost``,
    ``hardware``): the input shape and class count it is built for, and the refusal of a
    space that builds no network."""

    def __init__(self, input_shape: Sequence[int] | None = None, num_classes: int = 10) -> None:
        if input_shape is not None:
            if isinstance(input_shape, str | bytes) or not isinstance(input_shape, Sequence):
                raise ArchsearchError(f"input_shape must be a list of sizes, got {input_shape!r}")
            if not input_shape or not all(_positive_int(n) for n in input_shape):
                raise ArchsearchError(f"input_shape must hold positive integers: {input_shape!r}")
        if not _positive_int(num_classes):
            raise ArchsearchError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.input_shape = None if input_shape is None else tuple(int(n) for n in input_shape)
        self.num_classes = int(num_classes)

    def shape_for(self, space: SearchSpace) -> tuple[int, ...]:
        """The input shape networks of ``space`` are costed on."""
        if self.input_shape is not None:
            return self.input_shape
        own = getattr(space, "input_shape", None)
        return tuple(int(n) for n in own) if own is not None else DEFAULT_INPUT_SHAPE

    def check_space(self, space: SearchSpace) -> None:
        if type(space).build is SearchSpace.build:
            raise ArchsearchError(
                f"evaluator {self.name} builds networks, and space {space.name!r} does not "
                "build any"
            )


@EVALUATORS.register("cost")
class CostEvaluator(NetworkEvaluator):
    """Reports ``params`` (trainable parameters) and ``flops`` (of one forward pass of one
    input) of ``space.build(arch, input_shape, num_classes)``.

    ``input_shape`` defaults to the space's own ``input_shape`` when it has one (a
    define-by-run space), else to CIFAR's ``[3, 32, 32]``. The network is built with
    torch's global random state forked and seeded, so evaluating changes no one else's
    random numbers; the counts depend on no weight anyway, which makes them deterministic.
    The objective is ``params``, minimised. The whole evaluation is cheap, so both values
    are also :meth:`cheap_values`: a study checks its hard constraints on them before it
    counts an evaluation.
    """

    objective_name = "params"
    objective_direction = "min"
    reported_name = "flops"

    def value_names(self, space: SearchSpace) -> frozenset[str]:
        return frozenset({"params", "flops"})

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        return EvalResult(network_costs(space, arch, self.shape_for(space), self.num_classes, seed))

    def cheap_values(self, arch: Architecture, space: SearchSpace) -> dict[str, float]:
        """What :meth:`evaluate` reports: the counts depend on no seed."""
        return network_costs(space, arch, self.shape_for(space), self.num_classes)


def network_costs(
    space: SearchSpace,
    arch: Architecture,
    input_shape: Sequence[int],
    num_classes: int,
    seed: int = 0,
) -> dict[str, float]:
    """``params`` and ``flops`` of ``space.build(arch, input_shape, num_classes)``, built
    with torch's global random state forked and seeded, so that no one else's random
    numbers change (the counts depend on no weight)."""
    from archsearch.hardware.cost import count_flops, count_params

    model = build_quietly(space, arch, input_shape, num_classes, seed)
    return {"params": float(count_params(model)), "flops": float(count_flops(model, input_shape))}


def build_quietly(
    space: SearchSpace, arch: Architecture, input_shape: Sequence[int], num_classes: int, seed: int
) -> Any:  # torch.nn.Module
    """``space.build(...)`` with torch's global random state forked and seeded, so that no
    one else's random numbers change."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(arch, input_shape, num_classes)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
