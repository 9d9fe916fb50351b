"""Scoring many architectures of a space with many proxies, and the batches they read.

Two kinds of batch feed the data-dependent proxies:

* :func:`random_batch`: standard Gaussian images and uniformly random labels. Data-free: a
  search needs nothing but the network, and the scores cannot leak a test set.
* :func:`fashion_mnist_batch`: real Fashion-MNIST training images (28x28 grey), resized
  bilinearly to the network's input size and replicated over its input channels, labels
  as they are. Normalised with the training set's mean and std before resizing.

Proxies that need no data (synflow, Zen, #params, FLOPs, linear regions) ignore the batch
but its shape.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.errors import ArchsearchError
from archsearch.proxies.base import PROXIES, compute_proxies
from archsearch.space.base import Architecture, SearchSpace

#: the batch handed to the proxies; each proxy reads its first ``batch_size`` rows
DEFAULT_BATCH = 32


def random_batch(
    batch_size: int,
    input_shape: Sequence[int],
    num_classes: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard Gaussian inputs and uniform random labels, from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((batch_size, *input_shape), generator=g)
    y = torch.randint(0, num_classes, (batch_size,), generator=g)
    return x.to(device), y.to(device)


def fashion_mnist_batch(
    batch_size: int,
    input_shape: Sequence[int],
    num_classes: int = 10,
    seed: int = 0,
    device: torch.device | str = "cpu",
    data_dir: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random Fashion-MNIST training images fitted to ``input_shape``.

    Images are resized bilinearly from 28x28 to the input's height and width and the grey
    channel is repeated over its channels; labels are the classes 0..9 (so the network needs
    at least 10 outputs).
    """
    from archsearch.data import load_dataset

    if num_classes < 10:
        raise ArchsearchError(f"Fashion-MNIST has 10 classes; the network has {num_classes}")
    data = load_dataset("fashion-mnist", data_dir)
    rng = np.random.default_rng(seed)
    pick = torch.from_numpy(rng.choice(len(data.x_train), batch_size, replace=False))
    x = data.x_train[pick]
    channels, height, width = (int(d) for d in input_shape)
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    x = x.expand(-1, channels, -1, -1).contiguous()
    return x.to(device), data.y_train[pick].to(device)


def thin_space(space: SearchSpace) -> SearchSpace | None:
    """A width-1, one-cell-per-stage copy of a cell space (NAS-Bench-201), else None.

    TE-NAS counts linear regions on such a network (C=1, N=1) because on a wide one every
    input has its own activation pattern.
    """
    options = space.config()
    if "channels" not in options or "cells_per_stage" not in options:
        return None
    options = {**options, "channels": 1, "cells_per_stage": 1}
    options.pop("name", None)
    try:
        return type(space)(**options)
    except TypeError:
        return None


def score_architectures(
    space: SearchSpace,
    archs: Sequence[Architecture],
    names: Sequence[str],
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    *,
    num_classes: int,
    seed: int = 0,
    batch_size: int | None = None,
    use_thin_probe: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every proxy of ``names`` for every architecture: (scores, seconds), each a dict of
    arrays in the order of ``archs``.

    Each network is built by ``space.build`` with weights drawn from torch's generator
    seeded with ``seed`` (the same initialisation stream for every architecture), for inputs
    of ``inputs.shape[1:]`` and ``num_classes`` outputs. Proxies registered with
    ``thin_probe`` score a width-1 copy (:func:`thin_space`) when ``use_thin_probe`` and the
    space has one. A proxy that raises on an architecture scores ``nan`` there.
    """
    input_shape = tuple(inputs.shape[1:])
    thin = thin_space(space) if use_thin_probe else None
    groups: list[tuple[list[str], SearchSpace]] = []
    on_thin = [n for n in names if thin is not None and PROXIES.get(n).thin_probe]
    on_full = [n for n in names if n not in on_thin]
    if on_full:
        groups.append((on_full, space))
    if on_thin:
        groups.append((on_thin, thin))  # type: ignore[arg-type]
    scores = {n: np.full(len(archs), math.nan) for n in names}
    seconds = {n: np.full(len(archs), math.nan) for n in names}
    devices = [inputs.device] if inputs.device.type == "cuda" else []
    for i, arch in enumerate(archs):
        for group, group_space in groups:
            start = time.perf_counter()
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                model = group_space.build(arch, input_shape, num_classes).to(inputs.device)
            built = time.perf_counter() - start
            timings: dict[str, float] = {}
            try:
                values = compute_proxies(
                    group, model, inputs, targets, seed=seed, batch_size=batch_size, timings=timings
                )
            except ArchsearchError:
                raise
            except (RuntimeError, ValueError):
                values = _one_by_one(group, model, inputs, targets, seed, batch_size, timings)
            for n in group:
                scores[n][i] = values[n]
                seconds[n][i] = timings.get(n, math.nan) + built / len(group)
        if on_progress is not None:
            on_progress(i + 1, len(archs))
    return scores, seconds


def _one_by_one(
    names: Sequence[str],
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    seed: int,
    batch_size: int | None,
    timings: dict[str, float],
) -> dict[str, float]:
    """Proxies one at a time, ``nan`` for those that fail on this network."""
    values = {}
    for n in names:
        try:
            values.update(
                compute_proxies(
                    [n], model, inputs, targets, seed=seed, batch_size=batch_size, timings=timings
                )
            )
        except ArchsearchError:
            raise
        except (RuntimeError, ValueError):
            values[n] = math.nan
    return values
