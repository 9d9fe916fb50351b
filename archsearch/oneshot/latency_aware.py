"""Latency-aware single-path search on the ``mobilenet`` space: ProxylessNAS and FBNet.

Both learn logits over each block position's joint ``(kernel, expansion, se)`` choice and
over each stage's depth (:class:`~archsearch.oneshot.mobile_supernet.MobileNetSupernet`).
Joint rather than factorised per decision: the latency table prices each combination (SE's
cost depends on the expansion), FBNet and ProxylessNAS both keep one categorical per layer
over whole candidate blocks, and sampling one categorical per position gives one path.

Per step (GDAS's alternation, Liu et al. 2019 Algorithm 1): the weights descend the
training loss of one path sampled from softmax(alpha), then the logits descend the
validation loss of another sampled path, with straight-through gates:

* **FBNet** (Wu et al., CVPR 2019, eq. 6-8): a hard Gumbel-softmax sample at temperature
  tau, straight-through (value one-hot, gradient of the relaxed sample); tau starts at
  ``tau_max`` (5) and is multiplied by ``tau_decay`` (exp(-0.045) = 0.956) every epoch.
* **ProxylessNAS** (Cai et al., ICLR 2019, sec. 3.2.1, eq. 4): binarised gates sampled
  from the multinomial softmax(alpha), with the paper's binary-gate gradient
  ``dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i)`` restricted to the sampled path
  (only its ``dL/dg_j`` is computed: the one-path case of the paper's two-path scheme,
  which keeps a step at one network's cost).

**Expected latency** (FBNet eq. 7, ProxylessNAS eq. 2), exact and differentiable from the
lookup table (:class:`ExpectedLatency`)::

    E[lat] = scale * (call + stem + first + head
                      + sum_blocks P(block active) * sum_c p(c) * LUT(block, c)) + offset

with ``P(block j of stage s active) = sum_{d > j} p_s(d)`` and the table's calibration
line. Per-epoch records carry it as ``expected_latency_ms``, beside ``derived_latency_ms``
(the table's latency of the argmax architecture) and the multiplier.

**Losses** (``latency_loss``): without a target, the papers' forms, ``"fbnet"``:
``CE * alpha * log(E[lat]) ** beta`` (eq. 5; E in ms, clamped above 1 ms so the log stays
positive) and ``"proxyless"``: ``CE + lambda * E[lat]``. With ``latency_target_ms`` T:
``"absolute"`` (default): ``CE + lambda * |E[lat] / T - 1|``, TuNAS's absolute-value reward
(Bender et al., CVPR 2020, sec. 4.1), whose pull toward T does not depend on which side
the search is on; or ``"mnasnet"``: ``CE * (E[lat] / T) ** beta`` (MnasNet's soft
objective, Tan et al. 2019 eq. 2, as a loss), which trades latency for accuracy and gives
no guarantee.

**Landing on the target** (``"absolute"``). Two things make the *derived* network, not only
the expectation, reach T:

* lambda is a Lagrange multiplier updated every step by dual ascent on the constraint
  ``|lat(derived) / T - 1| <= target_tolerance`` (``lambda += lambda_lr * (|lat / T - 1|
  - tolerance)``, floored at 0), as constrained one-shot searches do (HardCoRe-NAS,
  Nayman et al. 2021, satisfies its latency constraint by construction; here the
  multiplier grows until the constraint holds), so the CE term cannot hold the search off
  the target whatever its scale;
* the penalty prices the expectation under ``softmax(alpha / tau_lat)``, with tau_lat
  annealed geometrically from 1 to ``latency_tau_min`` over the search. At tau_lat = 1 it
  is E[lat] above; as tau_lat falls it becomes the latency of the argmax network, which
  is what is derived. Without it, E[lat] = T is met by a soft distribution whose argmax
  is the cheapest (or dearest) choice everywhere: the gradient of E[lat] favours every
  position's cheapest choice alike, so the argmax lands far from T.

Derivation is argmax per decision (:meth:`MobileNetSupernet.derive`), in canonical form.
"""

from __future__ import annotations

import math
from pathlib import Path as FilePath
from typing import Any

import torch
import torch.nn.functional as F

from archsearch.errors import ArchsearchError
from archsearch.hardware.lut import CALL, LatencyTable
from archsearch.oneshot.base import ONESHOT, _Mean
from archsearch.oneshot.differentiable import AlphaMethod
from archsearch.oneshot.runtime import loss_and_correct
from archsearch.oneshot.supernet import EdgeChoice, Supernet
from archsearch.space.base import Architecture

LOSSES = ("auto", "fbnet", "proxyless", "absolute", "mnasnet")
TARGET_LOSSES = ("absolute", "mnasnet")


class ExpectedLatency:
    """The table's expected latency (ms) of a distribution over a mobilenet supernet's
    architectures (see the module docstring); one-hot distributions give exactly
    ``table.predict(space.latency_units(arch))``."""

    def __init__(self, table: LatencyTable, net: Supernet) -> None:
        from archsearch.oneshot.mobile_supernet import MobileNetSupernet

        if not isinstance(net, MobileNetSupernet):
            raise ArchsearchError(
                f"expected latency needs a mobilenet supernet, not {net.space.name!r}"
            )
        space, shape = net.space, net.input_shape
        fixed = space.fixed_latency_units(net.width, shape, net.num_classes)
        keys = [
            [space.block_unit_key(s, b, k, e, se, net.width, shape) for k, e, se in net.choices]
            for s, b in net.positions
        ]
        wanted = [u.key for u in fixed] + [key for row in keys for key in row]
        missing = [key for key in wanted if key not in table.entries]
        if missing:
            raise ArchsearchError(
                f"latency table lacks {len(missing)} of the {len(wanted)} units of this "
                f"mobilenet supernet (e.g. {missing[0]!r}); measure one for this space, width "
                f"{net.width} and input {tuple(shape)} with 'archsearch latency-table'"
            )
        self.table, self.net = table, net
        self.fixed_ms = table.entries.get(CALL, 0.0) + sum(table.unit_ms(u.key) for u in fixed)
        self.block_ms = torch.tensor([[table.unit_ms(k) for k in row] for row in keys])
        #: stage (row of the depth logits) of each position, and which depths keep it
        self.stage_of = torch.tensor([s - 1 for s, _ in net.positions])
        self.keeps = torch.tensor([[float(d > b) for d in net.depths] for _, b in net.positions])

    def __call__(self, block_probs: torch.Tensor, depth_probs: torch.Tensor) -> torch.Tensor:
        """E[lat] for per-position choice probabilities and per-stage depth probabilities."""
        device = block_probs.device
        active = (depth_probs[self.stage_of.to(device)] * self.keeps.to(device)).sum(-1)
        per_block = (block_probs * self.block_ms.to(device)).sum(-1)
        raw = self.fixed_ms + (active * per_block).sum()
        return self.table.scale * raw + self.table.offset_ms

    def of_arch(self, arch: Architecture) -> float:
        """The table's latency of one architecture, through the space's units."""
        net = self.net
        return self.table.predict(net.space.latency_units(arch, net.input_shape, net.num_classes))


class LatencyAwareMethod(AlphaMethod):
    """Single-path architecture search with a latency term (see the module docstring).

    ``latency_table`` is a table written by ``archsearch latency-table`` for the supernet's
    space, width and input; ``latency_target_ms`` the target T (optional). Without a table
    the search is the single-path method alone, by cross-entropy.
    """

    #: the loss ``latency_loss="auto"`` gives without a target
    paper_loss = "proxyless"

    def __init__(
        self,
        *,
        latency_table: str | None = None,
        latency_target_ms: float | None = None,
        latency_loss: str = "auto",
        latency_lambda: float = 1.0,
        lambda_lr: float = 0.5,
        latency_alpha: float = 0.2,
        latency_beta: float = 0.6,
        latency_tau_min: float = 0.01,
        target_tolerance: float = 0.03,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if self.selection != "argmax":
            raise ArchsearchError(f"{self.name} derives by argmax; selection {self.selection!r}")
        if latency_loss not in LOSSES:
            raise ArchsearchError(f"unknown latency_loss {latency_loss!r}; losses: {LOSSES}")
        if latency_target_ms is not None and not (
            isinstance(latency_target_ms, int | float) and latency_target_ms > 0
        ):
            raise ArchsearchError(
                f"the latency target must be a positive number of ms, got {latency_target_ms!r}"
            )
        if latency_target_ms is not None and latency_table is None:
            raise ArchsearchError("a latency target needs a latency table (latency_table)")
        if latency_loss == "auto":
            latency_loss = "absolute" if latency_target_ms is not None else self.paper_loss
        if (latency_loss in TARGET_LOSSES) != (latency_target_ms is not None):
            raise ArchsearchError(
                f"latency_loss {latency_loss!r} "
                + ("needs a latency target" if latency_target_ms is None else "has no target")
                + f"; with a target use {TARGET_LOSSES}, without one 'fbnet' or 'proxyless'"
            )
        if latency_lambda < 0 or lambda_lr < 0 or not 0 < latency_tau_min <= 1:
            raise ArchsearchError(
                "need latency_lambda >= 0, lambda_lr >= 0 and 0 < latency_tau_min <= 1, got "
                f"{latency_lambda}, {lambda_lr}, {latency_tau_min}"
            )
        self.table = None if latency_table is None else LatencyTable.load(latency_table)
        self.latency_table = latency_table
        self.latency_target_ms = latency_target_ms
        self.latency_loss = latency_loss
        self.latency_lambda = latency_lambda
        self.lambda_lr = lambda_lr
        self.latency_alpha = latency_alpha
        self.latency_beta = latency_beta
        self.latency_tau_min = latency_tau_min
        self.target_tolerance = target_tolerance

    # ---------------------------------------------------------------- set-up
    def check_supernet(self, supernet: Supernet) -> None:
        from archsearch.oneshot.mobile_supernet import MobileNetSupernet

        if not isinstance(supernet, MobileNetSupernet):
            raise ArchsearchError(
                f"{self.name} searches the mobilenet space, not {supernet.space.name!r}"
            )
        if self.table is not None:
            ExpectedLatency(self.table, supernet)

    def _setup(self) -> None:
        self.check_supernet(self.net)
        super()._setup()
        self.latency = None if self.table is None else ExpectedLatency(self.table, self.net)
        self.multiplier = float(self.latency_lambda)
        self.step = 0

    def total_steps(self) -> int:
        return max(1, self.epochs * self.steps_per_epoch)

    def latency_tau(self) -> float:
        """Geometric from 1 to ``latency_tau_min`` over the search."""
        progress = min(self.step / max(1, self.total_steps() - 1), 1.0)
        return self.latency_tau_min**progress

    # -------------------------------------------------------------- sampling
    def sample_index(self) -> dict[str, EdgeChoice]:
        """A path drawn from softmax(alpha), for the weight step (no gates)."""
        with torch.no_grad():
            return {
                kind: EdgeChoice(
                    index=torch.multinomial(
                        a.softmax(-1), 1, generator=self.device_generator
                    ).squeeze(1).tolist()
                )
                for kind, a in self.net.alphas.items()
            }  # fmt: skip

    def gated_path(self) -> dict[str, EdgeChoice]:
        """A path with straight-through gates for the architecture step."""
        raise NotImplementedError

    # ------------------------------------------------------------------ loss
    def penalised_latency(self) -> torch.Tensor:
        tau = self.latency_tau()
        return self.latency(*((a / tau).softmax(-1) for a in self.net.arch_parameters()))

    def arch_loss(self, ce: torch.Tensor, latency: torch.Tensor) -> torch.Tensor:
        form = self.latency_loss
        if form == "fbnet":
            return (
                ce
                * self.latency_alpha
                * torch.log(latency.clamp_min(1 + 1e-6)) ** self.latency_beta
            )
        if form == "proxyless":
            return ce + self.multiplier * latency
        target = float(self.latency_target_ms)
        if form == "mnasnet":
            return ce * (latency / target) ** self.latency_beta
        return ce + self.multiplier * (latency / target - 1).abs()

    def derived_latency(self) -> float:
        return self.latency.of_arch(self.current_arch())

    def _dual_step(self) -> None:
        """Dual ascent on ``|lat(derived) / T - 1| <= tolerance`` (absolute loss)."""
        if self.latency_loss != "absolute" or not self.lambda_lr:
            return
        alphas = self.net.arch_parameters()
        one_hot = [F.one_hot(a.argmax(-1), a.shape[-1]).float() for a in alphas]
        with torch.no_grad():
            derived = float(self.latency(*one_hot))
        violation = abs(derived / self.latency_target_ms - 1) - self.target_tolerance
        self.multiplier = max(0.0, self.multiplier + self.lambda_lr * violation)

    # ------------------------------------------------------------ one epoch
    def _train_epoch(self) -> dict[str, Any]:
        train, valid = _Mean(), _Mean()
        search_arch = self.epoch >= self.warmup_epochs
        for (xt, yt), (xv, yv) in self.paired_batches():
            self.weight_step(xt, yt, self.sample_index(), train)
            if search_arch:
                self.net.train()
                with self.runtime.autocast():
                    ce, correct = loss_and_correct(self.net(xv, self.gated_path()), yv)
                loss = ce if self.latency is None else self.arch_loss(ce, self.penalised_latency())
                self._arch_update(torch.autograd.grad(loss, self.net.arch_parameters()))
                valid.add(ce, correct, len(yv))
                if self.latency is not None:
                    self._dual_step()
            self.step += 1
        return self._epoch_metrics(train, valid)

    # ----------------------------------------------------------- reporting
    def extra_diagnostics(self) -> dict[str, Any]:
        if self.latency is None:
            return {}
        with torch.no_grad():
            expected = float(self.latency(*self.net.softmax_weights().values()))
        record = {
            "expected_latency_ms": round(expected, 5),
            "derived_latency_ms": round(self.derived_latency(), 5),
            "latency_tau": round(self.latency_tau(), 5),
            "latency_lambda": round(self.multiplier, 5),
        }
        if self.latency_target_ms is not None:
            record["target_ms"] = self.latency_target_ms
        return record

    def _finalize(self) -> tuple[Architecture, dict[str, Any]]:
        arch, details = super()._finalize()
        if self.latency is not None:
            details.update(self.extra_diagnostics())
        return arch, details


@ONESHOT.register("fbnet")
class FBNet(LatencyAwareMethod):
    """FBNet (Wu et al., CVPR 2019): straight-through Gumbel-softmax single paths; see
    :mod:`archsearch.oneshot.latency_aware`. The paper's settings: logits lr 0.01 (Adam),
    tau from 5.0, decayed by exp(-0.045) per epoch, alpha 0.2, beta 0.6."""

    name = "fbnet"
    paper_loss = "fbnet"

    def __init__(
        self,
        *,
        tau_max: float = 5.0,
        tau_decay: float = math.exp(-0.045),
        arch_lr: float = 0.01,
        **options: Any,
    ) -> None:
        super().__init__(arch_lr=arch_lr, **options)
        if not tau_max > 0 or not 0 < tau_decay <= 1:
            raise ArchsearchError(
                f"need tau_max > 0 and 0 < tau_decay <= 1, got {tau_max}, {tau_decay}"
            )
        self.tau_max = tau_max
        self.tau_decay = tau_decay

    def tau(self) -> float:
        return self.tau_max * self.tau_decay**self.epoch

    def gated_path(self) -> dict[str, EdgeChoice]:
        from archsearch.oneshot.differentiable import gumbel_softmax_hard

        path = {}
        for kind, alpha in self.net.alphas.items():
            hard, index = gumbel_softmax_hard(alpha, self.tau(), self.device_generator)
            path[kind] = EdgeChoice(weights=hard, index=index)
        return path

    def extra_diagnostics(self) -> dict[str, Any]:
        return {**super().extra_diagnostics(), "tau": round(self.tau(), 5)}


@ONESHOT.register("proxylessnas")
class ProxylessNAS(LatencyAwareMethod):
    """ProxylessNAS (Cai et al., ICLR 2019): binarised paths sampled from softmax(alpha)
    with the binary-gate gradient; see :mod:`archsearch.oneshot.latency_aware`. The paper's
    logits lr is 1e-3 (Adam); short CPU searches need more."""

    name = "proxylessnas"
    paper_loss = "proxyless"

    def __init__(self, *, arch_lr: float = 1e-3, **options: Any) -> None:
        super().__init__(arch_lr=arch_lr, **options)

    def gated_path(self) -> dict[str, EdgeChoice]:
        path = {}
        for kind, alpha in self.net.alphas.items():
            p = alpha.softmax(-1)
            with torch.no_grad():
                index = torch.multinomial(p, 1, generator=self.device_generator).squeeze(1)
            # g = one_hot(sampled), gradient dg/dalpha = dp/dalpha (eq. 4 on the sampled path)
            gates = F.one_hot(index, p.shape[-1]).to(p.dtype) - p.detach() + p
            path[kind] = EdgeChoice(weights=gates, index=index.tolist())
        return path


def resolve_table(path: str | None) -> str | None:
    """A table path as a study stores it (absolute, so that a resume finds it)."""
    return None if path is None else str(FilePath(path).resolve())
