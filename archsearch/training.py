"""The one optimisation step and the one batch iterator every trainer shares.

The training evaluator (:func:`archsearch.evaluate.train.train_model`, and through it the
table builder), the supernets' weight steps (:meth:`archsearch.oneshot.base.OneShotMethod.
weight_step`, which DARTS, GDAS, SPOS/RSPS, few-shot SPOS, ENAS and the perturbation
selection call) and the inherited-weights fine-tuning all take their steps through
:func:`optimizer_step` and draw their batches from :func:`batches`. What a step means
(gradients zeroed to ``None``, one backward per loss, the clip, the update, the schedule) is
written once, so that a change to it (mixed precision with a loss scaler, gradient
accumulation, a fused clip) lands in every trainer at once and cannot drift between them.

Both are bit-for-bit what the trainers did before they shared them: the same random draw per
epoch (one ``torch.randperm`` of a CPU generator), the same batches, the same order of
forward and backward passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

__all__ = ["batches", "optimizer_step"]


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    losses: Iterable[torch.Tensor] | Callable[[], torch.Tensor],
    *,
    clip_params: Iterable[torch.Tensor] | None = None,
    clip: float = 0.0,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> list[torch.Tensor]:
    """One optimiser step on the summed gradients of ``losses``; returns them, detached.

    ``losses`` is a callable giving one loss, or an iterable of several whose gradients are
    summed (FairNAS trains K paths per step). An iterable is consumed lazily: loss ``k + 1``
    is computed (its forward pass run) after loss ``k``'s backward pass, so only one graph
    is alive at a time. Each loss is computed inside ``autocast()`` (e.g. :meth:`Runtime.autocast
    <archsearch.runtime.Runtime.autocast>`) when given, and backpropagated outside it.

    The step: gradients set to ``None``, one ``backward`` per loss, the gradient norm of
    ``clip_params`` (default: the optimiser's parameters) clipped at ``clip`` when
    ``clip > 0``, ``optimizer.step()``, then ``scheduler.step()`` when given.
    """
    optimizer.zero_grad(set_to_none=True)
    produced = iter((losses() for _ in range(1)) if callable(losses) else losses)
    done: list[torch.Tensor] = []
    while True:
        with autocast() if autocast is not None else contextlib.nullcontext():
            loss = next(produced, None)
        if loss is None:
            break
        loss.backward()
        done.append(loss.detach())
    if clip:
        if clip_params is None:
            clip_params = [p for group in optimizer.param_groups for p in group["params"]]
        nn.utils.clip_grad_norm_(clip_params, clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return done


def batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
    shuffle: bool = True,
    drop_last: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of mini-batches of tensors already on their device.

    The order is one ``torch.randperm`` of ``generator`` on the CPU (so it depends on the
    generator's seed alone, whatever the device), drawn when the first batch is asked for;
    ``shuffle=False`` keeps the stored order. ``drop_last`` drops a final partial batch (so
    BatchNorm never sees a batch of one) unless there are fewer than ``batch_size`` images,
    which then make the only batch.
    """
    n = len(x)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(x.device, non_blocking=True)
    stop = n - batch_size + 1 if drop_last and n >= batch_size else n
    for start in range(0, max(stop, 1), batch_size):
        idx = order[start : start + batch_size]
        if len(idx):
            yield x[idx], y[idx]
