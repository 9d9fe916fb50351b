"""Differentiable architecture search: DARTS (first and second order) and GDAS.

Both learn architecture parameters ``alpha`` (one row of operation logits per edge) by
gradient descent on the validation loss while the supernet weights ``w`` descend the
training loss, alternating one step each per batch pair (Liu et al. 2019, Algorithm 1).
Architecture optimiser: Adam with betas (0.5, 0.999) and weight decay 1e-3 (both papers);
its learning rate 3e-4 is tuned for ~20,000 steps (50 CIFAR epochs), so short CPU searches
need a larger ``arch_lr``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.errors import ArchsearchError
from archsearch.oneshot.base import ONESHOT, OneShotMethod, _Mean, categorical_entropy
from archsearch.oneshot.runtime import loss_and_correct
from archsearch.oneshot.supernet import EdgeChoice, Path, Supernet
from archsearch.space.base import Architecture

SELECTIONS = ("argmax", "perturbation")
WARMUP_SAMPLINGS = ("gumbel", "fair")


class AlphaMethod(OneShotMethod):
    """Base of the methods that learn ``alpha``: derivation, entropy and final selection.

    ``selection="argmax"`` derives the architecture from softmax(alpha) (argmax per edge on
    NAS-Bench-201, the two strongest inputs per node in the DARTS space); ``"perturbation"``
    selects by how much removing each operation hurts the supernet's validation accuracy
    (Wang et al., ICLR 2021; see :mod:`archsearch.oneshot.selection`).
    ``warmup_epochs`` train only the weights first, as DARTS-PT and many DARTS variants do.
    """

    def __init__(
        self,
        *,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
        warmup_epochs: int = 0,
        selection: str = "argmax",
        perturbation_tune_steps: int = 0,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if selection not in SELECTIONS:
            raise ArchsearchError(f"unknown selection {selection!r}; selections: {SELECTIONS}")
        if not arch_lr > 0 or warmup_epochs < 0:
            raise ArchsearchError(
                f"arch_lr must be > 0 and warmup_epochs >= 0, got {arch_lr}, {warmup_epochs}"
            )
        self.arch_lr = arch_lr
        self.arch_weight_decay = arch_weight_decay
        self.warmup_epochs = warmup_epochs
        self.selection = selection
        self.perturbation_tune_steps = perturbation_tune_steps

    def _setup(self) -> None:
        self.a_opt = torch.optim.Adam(
            self.net.arch_parameters(),
            lr=self.arch_lr,
            betas=(0.5, 0.999),
            weight_decay=self.arch_weight_decay,
        )

    def paired_batches(self):
        """Each training batch with a validation batch; the validation split is reshuffled
        whenever it runs out, so an epoch is one pass over the training split even when
        the validation split is smaller."""
        valid = self.valid_batches()
        for train_batch in self.train_batches():
            valid_batch = next(valid, None)
            if valid_batch is None:
                valid = self.valid_batches()
                valid_batch = next(valid)
            yield train_batch, valid_batch

    def current_arch(self) -> Architecture:
        return self.net.derive(self.net.probabilities())

    def entropy(self) -> float:
        return float(np.mean([categorical_entropy(p) for p in self.net.probabilities().values()]))

    def extra_diagnostics(self) -> dict[str, Any]:
        probabilities = self.net.probabilities()
        kind = "normal" if "normal" in probabilities else self.net.kinds[0]
        skip = self.net.operations.index(self.net.skip_op)
        return {"skip_weight": round(float(probabilities[kind][:, skip].mean()), 5)}

    def detached_relaxation(self) -> dict[str, EdgeChoice]:
        with torch.no_grad():
            return self.net.relaxed_path(
                {k: w.detach() for k, w in self.net.softmax_weights().items()}
            )

    def _finalize(self) -> tuple[Architecture, dict[str, Any]]:
        details: dict[str, Any] = {
            "softmax_alpha": {
                k: np.round(p, 4).tolist() for k, p in self.net.probabilities().items()
            }
        }
        derived = self.current_arch()
        details["argmax_arch"] = self.net.space.to_string(derived)
        if self.selection == "argmax":
            return derived, details
        from archsearch.oneshot.selection import perturbation_selection

        arch, trace = perturbation_selection(self, tune_steps=self.perturbation_tune_steps)
        details["perturbation"] = trace
        return arch, details

    @staticmethod
    def _epoch_metrics(train: _Mean, arch_steps: _Mean) -> dict[str, Any]:
        """The epoch's training loss and accuracy, and the mean loss of its architecture
        steps (absent in warm-up epochs, which take none)."""
        train_loss, train_acc = train.read()
        metrics = {"train_loss": round(train_loss, 5), "train_acc": round(train_acc, 3)}
        if arch_steps.n:
            metrics["arch_step_loss"] = round(arch_steps.read()[0], 5)
        return metrics

    def _arch_update(self, grads: Sequence[torch.Tensor]) -> None:
        for alpha, g in zip(self.net.arch_parameters(), grads, strict=True):
            alpha.grad = g.detach()
        self.a_opt.step()
        self.a_opt.zero_grad(set_to_none=True)


def unrolled_hypergradient(
    net: Supernet,
    path: Callable[[], Path],
    train_batch: tuple[torch.Tensor, torch.Tensor],
    valid_batch: tuple[torch.Tensor, torch.Tensor],
    xi: float,
    r: float = 0.01,
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Second-order DARTS gradient of the validation loss w.r.t. alpha (Liu et al. 2019).

    With one virtual SGD step ``w' = w - xi * grad_w L_train(w, a)`` (eq. 7),

        grad_a L_val(w', a) - xi * grad2_{a,w} L_train(w, a) . grad_w' L_val(w', a)   (eq. 7)

    where the Hessian-vector product is the central difference of eq. 8,
    ``(grad_a L_train(w+, a) - grad_a L_train(w-, a)) / (2 eps)`` with
    ``w+- = w +- eps * grad_w' L_val(w', a)`` and ``eps = r / ||grad_w' L_val(w', a)||``
    (r = 0.01 in the paper). ``path()`` must build the edge weights from the alphas with
    gradients. The weights are restored on return. Also returns the validation loss and
    the number of correct predictions at ``w'``.
    """
    weights = net.weight_parameters()
    alphas = net.arch_parameters()
    xt, yt = train_batch
    xv, yv = valid_batch

    def grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        found = torch.autograd.grad(loss, list(params), allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, found, strict=True)]

    def train_loss() -> torch.Tensor:
        return F.cross_entropy(net(xt, path()).float(), yt)

    original = [w.detach().clone() for w in weights]
    try:
        step = grads(train_loss(), weights)
        with torch.no_grad():
            for w, g in zip(weights, step, strict=True):
                w.sub_(xi * g)
        valid_loss, correct = loss_and_correct(net(xv, path()), yv)
        found = grads(valid_loss, [*alphas, *weights])
        d_alpha, d_w = found[: len(alphas)], found[len(alphas) :]
        norm = torch.sqrt(sum((g.float() ** 2).sum() for g in d_w))
        eps = r / float(norm.clamp_min(1e-12))
        with torch.no_grad():
            for w, w0, g in zip(weights, original, d_w, strict=True):
                w.copy_(w0 + eps * g)
        g_plus = grads(train_loss(), alphas)
        with torch.no_grad():
            for w, w0, g in zip(weights, original, d_w, strict=True):
                w.copy_(w0 - eps * g)
        g_minus = grads(train_loss(), alphas)
    finally:
        with torch.no_grad():
            for w, w0 in zip(weights, original, strict=True):
                w.copy_(w0)
    hypergradient = [
        da - xi * (gp - gm) / (2 * eps) for da, gp, gm in zip(d_alpha, g_plus, g_minus, strict=True)
    ]
    return hypergradient, valid_loss.detach(), correct


@ONESHOT.register("darts")
class DARTS(AlphaMethod):
    """DARTS (Liu, Simonyan & Yang, ICLR 2019): continuous relaxation of every edge.

    ``order=1`` takes ``grad_a L_val(w, a)`` (xi = 0); ``order=2`` the unrolled gradient of
    eq. 7 with the finite-difference Hessian-vector product of eq. 8, with ``xi`` the
    current weight learning rate unless given. The second-order step runs in float32 even
    under mixed precision: a central difference with ``eps = 0.01 / ||g||`` falls below
    bfloat16's resolution.
    """

    name = "darts"

    def __init__(self, *, order: int = 1, xi: float | None = None, **options: Any) -> None:
        super().__init__(**options)
        if order not in (1, 2):
            raise ArchsearchError(f"DARTS order must be 1 or 2, got {order!r}")
        if xi is not None and not (isinstance(xi, int | float) and xi >= 0):
            raise ArchsearchError(f"xi must be a number >= 0 (or None: the weight lr), got {xi!r}")
        self.order = order
        self.xi = xi

    def _valid_path(self, arch: Architecture | None) -> Callable[[], Path]:
        path = self.detached_relaxation()
        return lambda: path

    def _train_epoch(self) -> dict[str, Any]:
        train, valid = _Mean(), _Mean()
        search_arch = self.epoch >= self.warmup_epochs
        for (xt, yt), (xv, yv) in self.paired_batches():
            if search_arch:
                self.net.train()
                if self.order == 1:
                    with self.runtime.autocast():
                        loss, correct = loss_and_correct(self.net(xv, self.net.relaxed_path()), yv)
                    grads = torch.autograd.grad(loss, self.net.arch_parameters())
                else:
                    xi = self.xi if self.xi is not None else self.w_sched.get_last_lr()[0]
                    grads, loss, correct = unrolled_hypergradient(
                        self.net, self.net.relaxed_path, (xt, yt), (xv, yv), xi
                    )
                self._arch_update(grads)
                valid.add(loss, correct, len(yv))
            self.weight_step(xt, yt, self.detached_relaxation(), train)
        return self._epoch_metrics(train, valid)


def gumbel_softmax_hard(
    alpha: torch.Tensor, tau: float, generator: torch.Generator
) -> tuple[torch.Tensor, list[int]]:
    """A hard Gumbel-softmax sample per row, straight-through (GDAS, Dong & Yang 2019).

    Returns ``h = one_hot(argmax) - p.detach() + p`` with ``p = softmax((log_softmax(alpha)
    + g) / tau)``, g ~ Gumbel(0, 1): one-hot in value, ``grad p`` in gradient (eq. 5-7 of
    the GDAS paper) and the sampled index of each row.
    """
    u = torch.rand(alpha.shape, generator=generator, device=alpha.device)
    gumbel = -torch.log(-torch.log(u.clamp_min(1e-20)))
    probs = ((alpha.log_softmax(dim=-1) + gumbel) / tau).softmax(dim=-1)
    index = probs.argmax(dim=-1)
    one_hot = F.one_hot(index, alpha.shape[-1]).to(probs.dtype)
    return one_hot - probs.detach() + probs, index.tolist()


@ONESHOT.register("gdas")
class GDAS(AlphaMethod):
    """GDAS (Dong & Yang, CVPR 2019): one sampled operation per edge and step.

    Each step samples a hard Gumbel-softmax architecture for the weight update (on the
    training batch) and another, with straight-through gradients to alpha, for the
    architecture update (on the validation batch); only the sampled operations run. The
    temperature falls linearly from ``tau_max`` to ``tau_min`` over the search (10 to 0.1 in
    the paper's NAS-Bench-201 runs).

    ``warmup_sampling`` chooses the paths the ``warmup_epochs`` train: ``"gumbel"`` samples
    them from the (still uniform) alphas, one per step, as the search itself does;
    ``"fair"`` trains FairNAS's K paths per step, every operation of every edge once
    (:meth:`~archsearch.oneshot.base.OneShotMethod.fair_paths`). The alphas learn from the
    supernet's inherited-weight losses, so they inherit its bias: one uniform path per step
    leaves the weighted operations under-trained and the supernet favouring parameter-free
    cells (measured for SPOS in :mod:`archsearch.oneshot.spos`). A fair warm-up starts the
    search from a supernet without that bias; after it, the weights train on one Gumbel path
    per step again.

    At CPU scale (Fashion-MNIST, C=8, N=1, 8,000 images; ``benchmarks/results/oneshot_gdas*``)
    GDAS has not found a good cell: with the papers' weight decay on alpha the distribution
    stays near uniform (Adam settles the alphas where the decay balances their small mean
    gradient; entropy 1.594 of 1.609 after 250 epochs) and its argmax drifts to skips and
    poolings as tau falls, with or without a fair warm-up; without the decay it concentrates
    on ``none``. Derived cells retrained into the table's top 35-62%, never the top 10%.
    Read ``entropy`` and ``parameter_free_share`` before trusting a GDAS cell.
    """

    name = "gdas"

    def __init__(
        self,
        *,
        tau_max: float = 10.0,
        tau_min: float = 0.1,
        warmup_sampling: str = "gumbel",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not tau_max >= tau_min > 0:
            raise ArchsearchError(f"need tau_max >= tau_min > 0, got {tau_max}, {tau_min}")
        if warmup_sampling not in WARMUP_SAMPLINGS:
            raise ArchsearchError(
                f"unknown warmup_sampling {warmup_sampling!r}; choose from {WARMUP_SAMPLINGS}"
            )
        self.tau_max = tau_max
        self.tau_min = tau_min
        self.warmup_sampling = warmup_sampling

    def _setup(self) -> None:
        super()._setup()
        if self.warmup_sampling == "fair" and self.warmup_epochs:
            self.check_fair_sampling()

    def tau(self, step: int) -> float:
        total = max(1, self.epochs * self.steps_per_epoch - 1)
        return self.tau_max - (self.tau_max - self.tau_min) * min(step, total) / total

    def sample(self, tau: float, with_weights: bool) -> dict[str, EdgeChoice]:
        path = {}
        for kind, alpha in self.net.alphas.items():
            hard, index = gumbel_softmax_hard(alpha, tau, self.device_generator)
            path[kind] = EdgeChoice(weights=hard if with_weights else None, index=index)
        return path

    def _train_epoch(self) -> dict[str, Any]:
        train, valid = _Mean(), _Mean()
        search_arch = self.epoch >= self.warmup_epochs
        step = self.epoch * self.steps_per_epoch
        for (xt, yt), (xv, yv) in self.paired_batches():
            tau = self.tau(step)
            if not search_arch and self.warmup_sampling == "fair":
                weight_paths = self.fair_paths()
            else:
                with torch.no_grad():
                    weight_paths = [self.sample(tau, with_weights=False)]
            self.weight_step(xt, yt, weight_paths, train)
            if search_arch:
                self.net.train()
                with self.runtime.autocast():
                    loss, correct = loss_and_correct(self.net(xv, self.sample(tau, True)), yv)
                self._arch_update(torch.autograd.grad(loss, self.net.arch_parameters()))
                valid.add(loss, correct, len(yv))
            step += 1
        return {**self._epoch_metrics(train, valid), "tau": round(self.tau(step - 1), 4)}
