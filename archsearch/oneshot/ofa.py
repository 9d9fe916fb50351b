"""Once-for-All's progressive shrinking (Cai et al., ICLR 2020, sec. 3.2) on the mobilenet
supernet: train once, then specialise (:mod:`archsearch.oneshot.specialise`) for many
devices and latency targets without retraining.

The supernet is :class:`~archsearch.oneshot.mobile_supernet.MobileNetSupernet` (centre-
cropped kernels, first-channel expansions, shared SE, depth by skipping a stage's last
blocks). Training runs in four phases, each a fraction of the steps (``phases``, default a
quarter each), and each phase lets one more dimension vary, the others at their largest:

======== ============================================================================
phase    what a step samples (uniformly, per block position / per stage)
======== ============================================================================
largest  nothing: the largest network (max kernel, max expansion, max depth, SE on)
kernel   kernel and SE; expansion and depth at their largest
depth    kernel, SE and depth; expansion at its largest
expand   everything
======== ============================================================================

SE is elastic from the kernel phase on: like the kernel it changes an operator and not a
tensor width, so it shrinks nothing the later phases depend on. (OFA fixes SE per stage;
this space searches it per block.) One cosine schedule spans all phases; OFA restarts the
learning rate per phase at a lower peak, which a CPU-scale run of a few epochs does not
need.

**In-place distillation** (``distill``, on by default; OFA sec. 3.2 and the in-place
variant of slimmable networks, Yu & Huang, ICCV 2019): once the largest network is no
longer the only one trained, each step first runs the largest path without gradient and
uses its logits as soft targets for the sampled path in the same step::

    loss = CE(student, y) + distill_ratio * T^2 * KL(softmax(teacher / T) || softmax(student / T))

One extra forward per step, no second model: OFA distils from a separately kept copy of the
trained largest network; here the teacher is the largest path of the supernet itself, as
it is trained further (BigNAS's in-place form without the sandwich rule's smallest path).
The teacher's forward runs in training mode (batch statistics), as the student's does.

Selection: the study's one trial is the largest network (what phase one trained and every
later phase distilled from); the point of the method is :func:`~archsearch.oneshot.
specialise.specialise` over the saved supernet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from archsearch.errors import ArchsearchError
from archsearch.oneshot.base import ONESHOT, OneShotMethod, _Mean
from archsearch.oneshot.runtime import loss_and_correct
from archsearch.oneshot.supernet import EdgeChoice, Path, Supernet
from archsearch.space.base import Architecture
from archsearch.space.mobilenet import SE_CHOICES
from archsearch.training import optimizer_step

PHASES = ("largest", "kernel", "depth", "expand")
#: what each phase samples; the rest is at its largest
ELASTIC = {
    "largest": frozenset(),
    "kernel": frozenset({"kernel", "se"}),
    "depth": frozenset({"kernel", "se", "depth"}),
    "expand": frozenset({"kernel", "se", "depth", "expand"}),
}


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Hinton et al.'s soft-target loss, ``T^2 KL(p_teacher || p_student)`` at temperature
    T, batch mean; the teacher is a constant."""
    t = float(temperature)
    log_student = F.log_softmax(student.float() / t, dim=-1)
    soft = F.softmax(teacher.detach().float() / t, dim=-1)
    return F.kl_div(log_student, soft, reduction="batchmean") * t * t


@ONESHOT.register("ofa")
class OnceForAll(OneShotMethod):
    """Progressive shrinking with in-place distillation (see the module docstring).

    ``phases``: four fractions of the training steps (largest, kernel, depth, expand),
    summing to 1; a zero skips that phase. ``distill``: soft targets from the largest path;
    ``distill_ratio`` weighs them against the cross-entropy (OFA's ``kd_ratio``, 1.0),
    ``distill_temperature`` softens both. ``calibration_batches``: BN recalibration batches
    per scored sub-network (SPOS's, used by the study's scoring and by specialisation).
    """

    name = "ofa"

    def __init__(
        self,
        *,
        phases: Sequence[float] = (0.25, 0.25, 0.25, 0.25),
        distill: bool = True,
        distill_ratio: float = 1.0,
        distill_temperature: float = 1.0,
        calibration_batches: int = 4,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        fractions = [float(f) for f in phases]
        if len(fractions) != len(PHASES) or any(f < 0 for f in fractions):
            raise ArchsearchError(
                f"phases must be {len(PHASES)} fractions >= 0 ({', '.join(PHASES)}), "
                f"got {list(phases)!r}"
            )
        if abs(sum(fractions) - 1.0) > 1e-6:
            raise ArchsearchError(f"phases must sum to 1, got {list(phases)!r} ({sum(fractions)})")
        if distill_ratio < 0 or not distill_temperature > 0:
            raise ArchsearchError(
                "need distill_ratio >= 0 and distill_temperature > 0, got "
                f"{distill_ratio}, {distill_temperature}"
            )
        self.phases = fractions
        self.distill = bool(distill)
        self.distill_ratio = float(distill_ratio)
        self.distill_temperature = float(distill_temperature)
        self.calibration_batches = calibration_batches

    # ---------------------------------------------------------------- set-up
    def check_supernet(self, supernet: Supernet) -> None:
        from archsearch.oneshot.mobile_supernet import MobileNetSupernet

        if not isinstance(supernet, MobileNetSupernet):
            raise ArchsearchError(
                f"ofa trains the elastic mobilenet supernet, not space {supernet.space.name!r}"
            )

    def _setup(self) -> None:
        self.check_supernet(self.net)
        self.step = 0
        net = self.net
        self.largest_choice = net.choices.index(
            (max(net.space.kernels), max(net.space.expansions), max(SE_CHOICES))
        )
        #: choice indices by (kernel, expansion, se), for sampling per dimension
        self._choice_index = {c: i for i, c in enumerate(net.choices)}

    def total_steps(self) -> int:
        return max(1, self.epochs * self.steps_per_epoch)

    def phase(self, step: int | None = None) -> str:
        """The phase training step ``step`` (default: the current one) belongs to."""
        step = self.step if step is None else step
        bound = 0.0
        for name, fraction in zip(PHASES, self.phases, strict=True):
            bound += fraction * self.total_steps()
            if step < bound - 1e-9:
                return name
        return next(n for n, f in zip(PHASES[::-1], self.phases[::-1], strict=True) if f > 0)

    # -------------------------------------------------------------- sampling
    def largest_path(self) -> Path:
        net = self.net
        return {
            "block": EdgeChoice(index=[self.largest_choice] * len(net.positions)),
            "depth": EdgeChoice(index=[len(net.depths) - 1] * len(net.edges["depth"])),
        }

    def phase_path(self, phase: str) -> Path:
        """A path drawn uniformly over the dimensions ``phase`` lets vary."""
        elastic, space, net, rng = ELASTIC[phase], self.net.space, self.net, self.rng

        def draw(dimension: str, choices: Sequence[int]) -> int:
            return (
                int(choices[rng.integers(len(choices))]) if dimension in elastic else max(choices)
            )

        block = [
            self._choice_index[
                (
                    draw("kernel", space.kernels),
                    draw("expand", space.expansions),
                    draw("se", SE_CHOICES),
                )
            ]
            for _ in net.positions
        ]
        depth = [
            int(rng.integers(len(net.depths))) if "depth" in elastic else len(net.depths) - 1
            for _ in net.edges["depth"]
        ]
        return {"block": EdgeChoice(index=block), "depth": EdgeChoice(index=depth)}

    # ------------------------------------------------------------ one epoch
    def step_loss(self, x: torch.Tensor, y: torch.Tensor, path: Path, phase: str) -> tuple:
        """The training loss of ``path`` on one batch (cross-entropy, plus distillation from
        the largest path after the first phase), and its number of correct predictions."""
        logits = self.net(x, path)
        ce, correct = loss_and_correct(logits, y)
        if not (self.distill and self.distill_ratio and phase != "largest"):
            return ce, ce, correct
        with torch.no_grad():
            teacher = self.teacher_logits(x)
        kd = distillation_loss(logits, teacher, self.distill_temperature)
        return ce + self.distill_ratio * kd, ce, correct

    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The largest path's logits on ``x`` (the soft targets of in-place distillation)."""
        return self.net(x, self.largest_path())

    def _train_epoch(self) -> dict[str, Any]:
        meter = _Mean()
        phases: dict[str, int] = {}
        for x, y in self.train_batches():
            phase = self.phase()
            phases[phase] = phases.get(phase, 0) + 1
            path = self.largest_path() if phase == "largest" else self.phase_path(phase)
            self.net.train()
            parts: list[tuple[torch.Tensor, torch.Tensor]] = []

            def loss(x=x, y=y, path=path, phase=phase, parts=parts) -> torch.Tensor:
                total, ce, correct = self.step_loss(x, y, path, phase)
                parts.append((ce.detach(), correct))
                return total

            optimizer_step(
                self.w_opt,
                loss,
                clip_params=self.net.weight_parameters(),
                clip=self.grad_clip,
                autocast=self.runtime.autocast,
                scheduler=self.w_sched,
            )
            meter.add(*parts[0], len(y))
            self.step += 1
        loss_value, acc = meter.read()
        return {"train_loss": round(loss_value, 5), "train_acc": round(acc, 3), "phases": phases}

    def current_arch(self) -> Architecture | None:
        return None  # a supernet of every sub-network; nothing is preferred until specialised

    def entropy(self) -> float:
        """Nothing is learned about the architecture: 0 by convention (as no distribution)."""
        return 0.0

    def _valid_path(self, arch: Architecture | None):
        """The mean accuracy of paths of the current phase (the largest in phase one)."""
        phase = self.phase(max(self.step - 1, 0))
        if phase == "largest":
            return self.largest_path
        return lambda: self.phase_path(phase)

    def largest_arch(self) -> Architecture:
        path = self.largest_path()
        return self.net.arch_of(path["block"].index, path["depth"].index)

    def _finalize(self) -> tuple[Architecture, dict[str, Any]]:
        return self.largest_arch(), {
            "selection": "largest network (specialise the supernet for latency targets)",
            "phase_steps": {
                name: round(f * self.total_steps())
                for name, f in zip(PHASES, self.phases, strict=True)
            },
        }
