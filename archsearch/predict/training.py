"""Losses and the training loop shared by the neural predictors (MLP ensemble, GATES).

Two losses, as the issue and GATES (Ning et al., ECCV 2020, sec. 3.3) prescribe:

* ``mse``: regression on standardised scores.
* ``ranking``: pairwise hinge, ``max(0, m - (f(a_i) - f(a_j)))`` over every pair in a batch
  whose true scores order ``a_i`` above ``a_j``, with margin ``m = 0.1``. Search only needs
  the order, and a ranking loss spends no capacity on matching the scale.

Training never touches global random state: initialisation runs under
``torch.random.fork_rng`` with the predictor's seed and batches come from a private
generator, so fitting twice gives the same model and leaves the caller's RNG alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

from archsearch.errors import ArchsearchError
from archsearch.predict.base import standardise
from archsearch.space.base import Architecture

#: GATES' margin for the pairwise hinge loss (Ning et al. 2020, sec. 3.3)
MARGIN = 0.1


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread here, and give the caller's setting back after.

    The predictors' networks are tiny (batches of at most a few hundred small graphs), so
    splitting their kernels over threads costs more in synchronisation than it saves; on a
    busy machine it is ruinous (30 proposals of predictor-guided evolution took 3.6 s of CPU
    with one thread and did not finish in 300 s with two, on 2 oversubscribed cores). The
    setting is process-wide while inside, so a caller training another model on another
    thread at the same moment would see it too.
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Seed torch for model construction without changing the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


def pairwise_hinge(
    pred: torch.Tensor, target: torch.Tensor, margin: float = MARGIN
) -> torch.Tensor:
    """Mean hinge over ordered pairs; ``pred`` may carry leading ensemble dimensions.

    ``pred[..., i] - pred[..., j]`` should exceed ``margin`` whenever ``target[i] > target[j]``
    (GATES, eq. 5). Ties in ``target`` give no pair.
    """
    better = (target[:, None] > target[None, :]).to(pred.dtype)
    pairs = better.sum()
    if pairs == 0:
        return pred.sum() * 0.0
    diff = pred[..., :, None] - pred[..., None, :]
    hinge = torch.relu(margin - diff) * better
    return hinge.sum(dim=(-1, -2)).sum() / pairs


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "mse":
        return lambda pred, target: ((pred - target) ** 2).mean(dim=-1).sum()
    if name == "ranking":
        return pairwise_hinge
    raise ArchsearchError(f"unknown loss {name!r}; losses: ['mse', 'ranking']")


def train(
    forward: Callable[[torch.Tensor], torch.Tensor],
    parameters: list[torch.nn.Parameter],
    y: np.ndarray,
    *,
    loss: str,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    min_steps: int = 0,
    max_steps: int | None = None,
) -> None:
    """Adam with cosine-annealed learning rate over shuffled minibatches of indices.

    ``forward(indices)`` returns predictions for those training rows (an ensemble may add a
    leading dimension; the loss is summed over members). The number of epochs is raised
    until ``min_steps`` updates are made, so that a handful of architectures still trains
    the model (GATES at 0.1%), and lowered to stay within ``max_steps`` updates, so that a
    refit inside a long search stays cheap.
    """
    n = len(y)
    target = torch.as_tensor(y, dtype=torch.float32)
    batch_size = max(2, min(batch_size, n))
    per_epoch = -(-n // batch_size)
    epochs = max(epochs, -(-min_steps // per_epoch))
    if max_steps is not None:
        epochs = max(1, min(epochs, max_steps // per_epoch))
    total = epochs * per_epoch
    criterion = loss_function(loss)
    optimiser = torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, foreach=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            if len(index) < 2:
                continue
            optimiser.zero_grad(set_to_none=True)
            criterion(forward(index), target[index]).backward()
            optimiser.step()
            schedule.step()


class GradientTrained:
    """Options and fit/refresh steps shared by the predictors trained with :func:`train`.

    A mixin for :class:`~archsearch.predict.base.Predictor` subclasses (the MLP ensemble,
    GATES): they differ only in the network (``_build``) and in how a batch of training rows
    is scored (``_trainable``); initialisation under the predictor's seed, standardised
    targets, the single-threaded loop and the warm-started refresh are the same.
    """

    loss: str
    seed: int

    def _init_training(
        self,
        epochs: int,
        batch_size: int,
        lr: float,
        weight_decay: float,
        min_steps: int,
        max_steps: int | None,
    ) -> None:
        if epochs < 1 or batch_size < 2:
            raise ArchsearchError(
                f"need epochs >= 1 and batch_size >= 2; got {epochs}, {batch_size}"
            )
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.min_steps = min_steps
        self.max_steps = max_steps

    def _build(self, archs: list[Architecture]) -> None:
        """Create the network (runs under the predictor's seed)."""
        raise NotImplementedError

    def _trainable(
        self, archs: list[Architecture]
    ) -> tuple[Callable[[torch.Tensor], torch.Tensor], list[torch.nn.Parameter]]:
        """``forward(indices)`` scoring those rows of ``archs``, and the parameters to train."""
        raise NotImplementedError

    def _fit(self, archs: list[Architecture], y: np.ndarray) -> None:
        with seeded(self.seed) as generator:
            self._generator = generator
            self._build(archs)
        self._train(archs, y, self.epochs, self.min_steps, self.max_steps)

    def _partial_fit(self, archs: list[Architecture], y: np.ndarray, steps: int) -> None:
        self._train(archs, y, 1, steps, steps)

    def _train(
        self,
        archs: list[Architecture],
        y: np.ndarray,
        epochs: int,
        min_steps: int,
        max_steps: int | None,
    ) -> None:
        forward, parameters = self._trainable(archs)
        target, self._shift, self._scale = standardise(y)
        with single_thread():
            train(
                forward,
                parameters,
                target,
                loss=self.loss,
                epochs=epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                weight_decay=self.weight_decay,
                generator=self._generator,
                min_steps=min_steps,
                max_steps=max_steps,
            )

    def _unstandardise(self, out: np.ndarray) -> np.ndarray:
        """Predictions on the training scale with ``mse``; ranking scores are left as they are."""
        return out * self._scale + self._shift if self.loss == "mse" else out
