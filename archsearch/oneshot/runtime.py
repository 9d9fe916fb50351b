"""Supernet data plumbing: batches on the device, batch-norm statistics, evaluation.

The device, precision and memory format come from :class:`archsearch.runtime.Runtime`, the
runtime every trainer shares. Supernets use channels-last memory by default on both devices:
CUDA's tensor-core convolutions want it, and on the CPU it made supernet steps faster too
(compare ``benchmarks/oneshot.py --channels-last on`` and ``off``). :func:`batches` is
:func:`archsearch.training.batches`, the batch order the training evaluator draws too,
re-exported here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.data.base import ImageData
from archsearch.errors import ArchsearchError
from archsearch.runtime import Runtime
from archsearch.training import batches

__all__ = [
    "Runtime",
    "batch_statistics",
    "batches",
    "evaluate",
    "loss_and_correct",
    "on_device",
    "recalibrate_batch_norm",
    "seed_everything",
]


def on_device(data: ImageData, runtime: Runtime) -> ImageData:
    """``data`` on the runtime's device (channels-last if set); a validation split is needed:
    it is what one-shot methods choose architectures on."""
    if data.x_valid is None or data.y_valid is None:
        raise ArchsearchError(
            f"{data.name} has no validation split; carve one out of the training set with "
            "archsearch.data.split_train_valid"
        )
    if data.x_train.dim() != 4:
        raise ArchsearchError(
            f"one-shot search needs N x C x H x W images, got {tuple(data.x_train.shape)}"
        )
    return replace(
        data,
        x_train=runtime.tensor(data.x_train),
        y_train=data.y_train.to(runtime.device),
        x_valid=runtime.tensor(data.x_valid),
        y_valid=data.y_valid.to(runtime.device),
        x_test=None,
        y_test=None,
    )


def _batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """Run BN on each batch's own statistics, leaving the running statistics untouched.

    Supernet diagnostics use this: running statistics of a supernet mix every path it was
    trained on, so they describe no single architecture (Guo et al. 2020, Sec. 3.3).
    """
    norms = _batch_norms(model)
    saved = [(m, m.momentum) for m in norms]
    was_training = model.training
    model.train()
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.train(was_training)


def recalibrate_batch_norm(
    model: nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: Sequence[torch.Tensor],
) -> None:
    """Recompute every BN's running statistics for one path from a few batches.

    SPOS (Guo et al. 2020, Sec. 3.3) does this before scoring each architecture with
    inherited weights; the model is left in eval mode, using the fresh statistics.
    """
    norms = _batch_norms(model)
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    model.train()
    try:
        with torch.no_grad():
            for x in images:
                forward(x)
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()


def loss_and_correct(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy (in float32 under autocast) and the number of correct predictions."""
    loss = F.cross_entropy(logits.float(), y)
    return loss, (logits.argmax(dim=1) == y).sum()


def evaluate(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    runtime: Runtime,
    batch_size: int = 500,
) -> tuple[float, float]:
    """Mean loss and accuracy (%) of ``forward`` over ``x``; the caller sets the BN mode."""
    total_loss = torch.zeros((), device=x.device)
    total_correct = torch.zeros((), device=x.device)
    with torch.no_grad(), runtime.autocast():
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            loss, correct = loss_and_correct(forward(xb), yb)
            total_loss += loss * len(xb)
            total_correct += correct
    n = max(len(x), 1)
    return float(total_loss) / n, 100.0 * float(total_correct) / n


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator (weight init) and return a CPU generator for batches."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
