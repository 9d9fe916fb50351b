"""The one-shot search loop shared by every method, its result and the method registry.

A method trains a supernet on ``data.train`` and chooses an architecture on ``data.valid``.
The loop is the same for all of them: per epoch, the method's own training (weights only
for SPOS, weights and architecture for DARTS, GDAS and ENAS), then the diagnostics that tell
whether to trust the result (Sec. 4 of the issue):

* ``entropy``: mean entropy (nats) of the architecture distribution per decision; a uniform
  choice among K operations has log K, a decided one 0;
* ``skip_share``/``skip_count``: skip connections in the architecture derived now (the
  normal cell in the DARTS space): DARTS's collapse shows as this rising (Zela et al. 2020,
  Liang et al. 2019); methods with alphas also record ``skip_weight``, the mean softmax
  weight of ``skip_connect`` over the (normal) edges, which rises before the argmax flips;
* ``parameter_free_share``: the share of those edges holding a skip connection or a pooling,
  the operations without weights that collapsed cells fill up with (Zela et al. 2020);
  on NAS-Bench-201 / Fashion-MNIST, 20 epochs of DARTS add two poolings beside the skip;
* ``train_loss``/``train_acc`` of the supernet during the epoch and ``valid_loss``/
  ``valid_acc`` on the validation split (its first ``eval_size`` images), with BN on batch
  statistics (the supernet's running statistics describe a mixture of paths, not the path
  being measured). The path measured is the one the method optimises: the softmax mixture
  for DARTS, the derived architecture for GDAS and ENAS, a fresh uniform sample per batch
  for SPOS (the mean of random paths).

Every method's weight step is :meth:`OneShotMethod.weight_step`, and that is
:func:`archsearch.training.optimizer_step`, the step the training evaluator (and so the table
builder) takes as well, on batches of the shared :func:`archsearch.training.batches`: one
place holds the zero_grad/backward/clip/step semantics, so that mixed precision or gradient
accumulation changed there changes for every trainer. The architecture steps (DARTS's and
GDAS's alphas, ENAS's controller) are not weight steps and keep their own updates: their
gradients come from ``torch.autograd.grad`` or REINFORCE, not from one backward pass.

DARTS+ early stopping (Liang et al. 2019, Sec. 3.2): with ``early_stop_skips=k`` the search
stops after the first epoch whose derived cell holds ``k`` or more skip connections (DARTS+
uses k = 2 on the DARTS normal cell) and derives the architecture at that point.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from archsearch.configurable import Configurable
from archsearch.data.base import ImageData
from archsearch.errors import ArchsearchError
from archsearch.oneshot.runtime import (
    Runtime,
    batch_statistics,
    batches,
    evaluate,
    loss_and_correct,
    on_device,
)
from archsearch.oneshot.supernet import EdgeChoice, Path, Supernet
from archsearch.registry import Registry
from archsearch.space.base import Architecture
from archsearch.training import optimizer_step


@dataclass
class OneShotResult:
    """What a one-shot search found and how it got there.

    ``history`` has one dict per epoch (see the module docstring for the keys);
    ``search_seconds`` is the wall time of the whole search, supernet training and the
    final selection included; ``supernet`` is the trained supernet (on the search device).
    """

    method: str
    arch: Architecture
    arch_string: str
    history: list[dict[str, Any]]
    search_seconds: float
    stopped_early: bool
    supernet: Supernet
    runtime: dict[str, Any]
    options: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (no tensors)."""
        return {
            "method": self.method,
            "arch": self.arch_string,
            "search_seconds": round(self.search_seconds, 3),
            "epochs_run": len(self.history),
            "stopped_early": self.stopped_early,
            "runtime": self.runtime,
            "options": self.options,
            "history": self.history,
            "details": self.details,
        }


@dataclass
class Training:
    """The supernet training part of a search (:meth:`OneShotMethod.train`): the epoch
    records, whether DARTS+ stopped it early, the method's extra training details (few-shot
    SPOS's sub-supernets) and its wall time."""

    history: list[dict[str, Any]]
    stopped_early: bool
    details: dict[str, Any]
    seconds: float


class _Mean:
    """Running mean of per-batch tensors, read once per epoch (no GPU sync per step)."""

    def __init__(self) -> None:
        self.loss: torch.Tensor | float = 0.0
        self.correct: torch.Tensor | float = 0.0
        self.n = 0

    def add(self, loss: torch.Tensor, correct: torch.Tensor, n: int) -> None:
        self.loss = self.loss + loss.detach() * n
        self.correct = self.correct + correct.detach()
        self.n += n

    def read(self) -> tuple[float, float]:
        if not self.n:
            return math.nan, math.nan
        return float(self.loss) / self.n, 100.0 * float(self.correct) / self.n


def categorical_entropy(probabilities: np.ndarray) -> float:
    """Mean entropy (nats) of the rows of a probability matrix."""
    p = np.clip(np.asarray(probabilities, dtype=float), 1e-12, 1.0)
    return float(np.mean(-(p * np.log(p)).sum(axis=-1)))


class OneShotMethod(Configurable, ABC):
    """A weight-sharing search method. Subclasses implement one epoch of training, the
    architecture they would derive now, and the final selection.

    Weight optimiser (all methods): SGD with momentum, cosine-annealed from ``lr`` to
    ``lr_min`` over the whole search, gradient norm clipped at ``grad_clip`` (DARTS's
    settings: 0.025, 0.001, momentum 0.9, weight decay 3e-4, clip 5), stepped by
    :meth:`weight_step` through the shared :func:`archsearch.training.optimizer_step`.
    """

    name = "oneshot"
    #: where and how it runs, and its progress callback, do not shape the result
    not_options = ("device", "amp", "channels_last", "log")

    def __init__(
        self,
        *,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        grad_clip: float = 5.0,
        eval_size: int | None = None,
        early_stop_skips: int | None = None,
        seed: int = 0,
        device: str = "auto",
        amp: bool | str = "auto",
        channels_last: bool | str = "auto",
        log: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if epochs <= 0 or batch_size <= 0:
            raise ArchsearchError(f"epochs and batch_size must be > 0, got {epochs}, {batch_size}")
        if not lr > 0 or lr_min < 0:
            raise ArchsearchError(f"lr must be > 0 and lr_min >= 0, got {lr}, {lr_min}")
        if early_stop_skips is not None and early_stop_skips <= 0:
            raise ArchsearchError(f"early_stop_skips must be > 0, got {early_stop_skips}")
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_min = lr_min
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.eval_size = eval_size
        self.early_stop_skips = early_stop_skips
        self.seed = seed
        self.device = device
        self.amp = amp
        self.channels_last = channels_last
        self.log = log

    def options(self) -> dict[str, Any]:
        """The constructor options that shape the result (stored with it), derived from the
        constructor's signature (:mod:`archsearch.configurable`)."""
        return self.init_options()

    # ------------------------------------------------------------------ the loop
    def search(self, supernet: Supernet, data: ImageData) -> OneShotResult:
        """Train ``supernet`` on ``data`` and select an architecture.

        The supernet's initial weights are the caller's (seed torch before building it);
        batch order, sampling and Gumbel noise come from this method's ``seed``.
        """
        started = time.perf_counter()
        training = self.train(supernet, data)
        final, details = self._finalize()
        seconds = time.perf_counter() - started
        return OneShotResult(
            method=self.name,
            arch=final,
            arch_string=self.net.space.to_string(final),
            history=training.history,
            search_seconds=seconds,
            stopped_early=training.stopped_early,
            supernet=self.net,
            runtime=self.runtime.describe(),
            options=self.options(),
            details={**details, **training.details},
        )

    def train(self, supernet: Supernet, data: ImageData) -> Training:
        """The supernet training of :meth:`search`, without the final selection.

        A stored one-shot study (:mod:`archsearch.oneshot.run`) calls this, checkpoints
        ``self.net`` and then selects, so that a selection by a search over inherited
        weights (SPOS) runs as the study's own trials, resumable like any search.
        """
        self.runtime = Runtime.resolve(self.device, self.amp, self.channels_last)
        self.net = self.runtime.module(supernet)
        self.data = on_device(data, self.runtime)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.device_generator = torch.Generator(self.runtime.device).manual_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)
        self.steps_per_epoch = self._steps_per_epoch()
        self.new_weight_optimizer(self.epochs)
        self._setup()
        history: list[dict[str, Any]] = []
        stopped_early = False
        started = time.perf_counter()
        for epoch in range(self.epochs):
            self.epoch = epoch
            tick = time.perf_counter()
            record: dict[str, Any] = {"epoch": epoch + 1, **self._train_epoch()}
            if self.runtime.device.type == "cuda":
                torch.cuda.synchronize(self.runtime.device)
            record["seconds"] = round(time.perf_counter() - tick, 3)
            arch = self.current_arch()
            record["valid_loss"], record["valid_acc"] = self._validate(arch)
            record["entropy"] = round(self.entropy(), 5)
            record.update(self.extra_diagnostics())
            if arch is not None:
                record["skip_count"] = self.net.skip_count(arch)
                record["skip_share"] = round(self.net.skip_share(arch), 4)
                record["parameter_free_share"] = round(self.net.parameter_free_share(arch), 4)
                record["arch"] = self.net.space.to_string(arch)
            record["lr"] = self.w_sched.get_last_lr()[0]
            history.append(record)
            if self.log is not None:
                self.log(record)
            if (
                self.early_stop_skips is not None
                and arch is not None
                and self.net.skip_count(arch) >= self.early_stop_skips
            ):
                stopped_early = True
                break
        details = self._after_training()
        return Training(history, stopped_early, details, time.perf_counter() - started)

    def new_weight_optimizer(self, epochs: int) -> None:
        """SGD on ``self.net``'s weights, cosine-annealed from ``lr`` over ``epochs``."""
        self.w_opt = torch.optim.SGD(
            self.net.weight_parameters(),
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )
        self.w_sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_opt, T_max=epochs * self.steps_per_epoch, eta_min=self.lr_min
        )

    def check_supernet(self, supernet: Supernet) -> None:  # noqa: B027 (optional hook)
        """Refuse, before any training, a supernet this method cannot search (the command
        line calls it to fail early; latency-aware methods also check their table)."""

    # ------------------------------------------------------------ for subclasses
    def _steps_per_epoch(self) -> int:
        return max(1, len(self.data.x_train) // self.batch_size)

    def _setup(self) -> None:  # noqa: B027 (optional hook)
        """Create the method's own state (architecture optimiser, controller...)."""

    @abstractmethod
    def _train_epoch(self) -> dict[str, Any]:
        """One epoch of supernet (and architecture) training; returns train metrics."""

    @abstractmethod
    def current_arch(self) -> Architecture | None:
        """The architecture the method would derive now (None when it has none yet)."""

    @abstractmethod
    def entropy(self) -> float:
        """Mean entropy of the architecture distribution per decision, in nats."""

    def _after_training(self) -> dict[str, Any]:
        """More supernet training after the epochs (few-shot SPOS's sub-supernets), part of
        what a checkpoint holds; returns details for the result (none by default)."""
        return {}

    @abstractmethod
    def _finalize(self) -> tuple[Architecture, dict[str, Any]]:
        """The final architecture (and details) after supernet training."""

    def extra_diagnostics(self) -> dict[str, Any]:
        """Method-specific numbers for the epoch record (none by default)."""
        return {}

    def _valid_path(self, arch: Architecture | None) -> Callable[[], Path]:
        """The path the validation diagnostic measures; by default the derived arch."""
        assert arch is not None
        path = self.net.path_of(arch)
        return lambda: path

    # ------------------------------------------------------------------ helpers
    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return batches(self.data.x_train, self.data.y_train, self.batch_size, self.generator)

    def valid_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return batches(self.data.x_valid, self.data.y_valid, self.batch_size, self.generator)

    def weight_step(
        self, x: torch.Tensor, y: torch.Tensor, path: Path | Sequence[Path], meter: _Mean
    ) -> None:
        """One SGD step of the supernet weights on one batch: one path, or several whose
        gradients are summed first (FairNAS), one backward per path, path ``k + 1``'s
        forward after path ``k``'s backward. The step is :func:`archsearch.training.
        optimizer_step`, the training evaluator's too."""
        self.net.train()
        paths = [path] if isinstance(path, Mapping) else path
        corrects: list[torch.Tensor] = []

        def losses() -> Iterator[torch.Tensor]:
            for one in paths:
                loss, correct = loss_and_correct(self.net(x, one), y)
                corrects.append(correct)
                yield loss

        done = optimizer_step(
            self.w_opt,
            losses(),
            clip_params=self.net.weight_parameters(),
            clip=self.grad_clip,
            autocast=self.runtime.autocast,
            scheduler=self.w_sched,
        )
        for loss, correct in zip(done, corrects, strict=True):
            meter.add(loss, correct, len(y))

    def eval_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The validation images the diagnostics use (the first ``eval_size``)."""
        n = len(self.data.x_valid) if self.eval_size is None else self.eval_size
        return self.data.x_valid[:n], self.data.y_valid[:n]

    def path_accuracy(self, path_fn: Callable[[], Path], batch_size: int = 500) -> tuple:
        """Validation loss and accuracy (%) of a path, BN on batch statistics."""
        x, y = self.eval_split()
        with batch_statistics(self.net):
            return evaluate(lambda xb: self.net(xb, path_fn()), x, y, self.runtime, batch_size)

    def _validate(self, arch: Architecture | None) -> tuple[float, float]:
        loss, acc = self.path_accuracy(self._valid_path(arch))
        return round(loss, 5), round(acc, 3)

    def sample_path(self) -> dict[str, EdgeChoice]:
        """A uniformly sampled architecture of the space, as a single path (SPOS)."""
        return self.net.path_of(self.net.space.sample(self.rng))

    def fair_sampling_fits(self) -> bool:
        """Whether every edge chooses freely among all operations (NAS-Bench-201), so that
        :meth:`fair_paths` exist; DARTS-space edges also choose their inputs."""
        return self.net.space.name == "nb201"

    def check_fair_sampling(self, what: str = "fair sampling") -> None:
        """Refuse ``what`` (fair sampling, a few-shot split) on a space it does not fit."""
        if not self.fair_sampling_fits():
            raise ArchsearchError(
                f"{what} needs edges that choose among all operations (nb201), "
                f"not space {self.net.space.name!r}"
            )

    def fair_paths(self) -> list[dict[str, EdgeChoice]]:
        """K paths that use each operation of each edge exactly once (FairNAS, Chu et al.,
        ICCV 2021, Algorithm 1): a random permutation of the K operations per edge, path i
        taking the i-th operation of every permutation."""
        k = len(self.net.operations)
        perms = {
            kind: [self.rng.permutation(k) for _ in edges] for kind, edges in self.net.edges.items()
        }
        return [
            {kind: EdgeChoice(index=[int(p[i]) for p in ps]) for kind, ps in perms.items()}
            for i in range(k)
        ]


ONESHOT: Registry[type[OneShotMethod]] = Registry("oneshot")
