"""The prunable NAS-Bench-201 supernet and the two measures of TE-NAS (Chen, Gong & Wang,
ICLR 2021, "Neural Architecture Search on ImageNet in Four GPU Hours").

TE-NAS starts from the supernet in which every edge holds every operation and prunes it,
never training it. Only which operations are still alive matters, so the supernet here is
small and has no architecture parameters: each edge outputs the *mean* of its alive
operations, which is what the authors' DARTS-style supernet computes with every alive
``alpha`` at 0 and every pruned one at -inf (softmax weights 1/k). The operations are
NAS-Bench-201's own (``archsearch.space.nb201_network``), so a supernet with one alive
operation per edge is that architecture's network (up to the 1/1 weight).

The two measures, computed for the supernet with identical weights before and after removing
one operation:

* ``ntk_condition``: kappa = lambda_max / lambda_min of the NTK Theta = J J^T on a batch (TE-NAS
  eq. 3), J[i] the gradient of the sum of sample i's logits with respect to every parameter
  named ``weight``, back-propagated through the batch's shared BN statistics, as in the
  authors' ``get_ntk_n``; one forward pass and ``torch.func.jacrev`` (no per-sample loop).
* ``linear_regions``: the number of distinct ReLU activation patterns over a set of inputs
  (TE-NAS Sec. 3.2), counted on a thin supernet (C=1, N=1, no stem) with 3x3 inputs, as in
  the authors' ``Linear_Region_Collector(input_size=(1000, 1, 3, 3))``.

This module imports torch; :func:`archsearch.oneshot.tenas.tenas_prune` uses it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from archsearch.proxies.activations import _relu_codes
from archsearch.space.nb201 import EDGES, NUM_NODES, OPERATIONS
from archsearch.space.nb201_network import _edge, classify, nb201_skeleton


class PrunableCell(nn.Module):
    """A NAS-Bench-201 cell whose six edges hold all five operations; ``alive`` (6 x 5
    booleans, edges in the benchmark's order) selects which ones take part."""

    def __init__(self, channels: int, alive: np.ndarray) -> None:
        super().__init__()
        self.alive = alive  # shared with the supernet, so pruning needs no rebuild
        self.edges = nn.ModuleList(
            nn.ModuleList(_edge(op, channels) or nn.Identity() for op in OPERATIONS) for _ in EDGES
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, NUM_NODES):
            total = nodes[0] * 0.0
            for e, (to, src) in enumerate(EDGES):
                if to != j:
                    continue
                ops = np.flatnonzero(self.alive[e])
                # mean over alive ops; "none" (index 0) adds zero but counts, as softmax does
                mixed = [self.edges[e][k](nodes[src]) for k in ops if OPERATIONS[k] != "none"]
                if mixed:
                    total = total + torch.stack(mixed).sum(0) / len(ops)
            nodes.append(total)
        return nodes[-1]


class PrunableSupernet(nn.Module):
    """The NAS-Bench-201 skeleton (:func:`~archsearch.space.nb201_network.nb201_skeleton`)
    over :class:`PrunableCell` s that share one ``alive`` mask.

    ``stem=False`` feeds the input straight to the first cell, which then needs
    ``in_channels == channels`` (TE-NAS's thin network for linear regions: C=1, no stem).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 3,
        cells_per_stage: int = 1,
        stem: bool = True,
    ) -> None:
        super().__init__()
        if not stem and in_channels != channels:
            raise ValueError(f"without a stem, in_channels ({in_channels}) must equal channels")
        self.alive = np.ones((len(EDGES), len(OPERATIONS)), dtype=bool)
        parts = nb201_skeleton(
            in_channels,
            num_classes,
            lambda width: PrunableCell(width, self.alive),
            channels=channels,
            cells_per_stage=cells_per_stage,
            stem=stem,
        )
        self.stem = parts.stem
        self.cells = nn.Sequential(*parts.layers)
        self.lastact = parts.lastact
        self.global_pooling = parts.pool
        self.classifier = parts.classifier
        # TE-NAS measures in training mode only: batch statistics, never running ones (and no
        # buffer updates, which torch.func transforms refuse)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None

    def set_alive(self, alive: np.ndarray) -> None:
        """Select the alive operations (copied into the mask every cell shares)."""
        alive = np.asarray(alive, dtype=bool)
        if alive.shape != self.alive.shape or not alive.any(axis=1).all():
            raise ValueError(f"alive must be {self.alive.shape} with one op per edge at least")
        self.alive[...] = alive

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.cells(self.stem(x))
        return classify(features, self.lastact, self.global_pooling, self.classifier)


def kaiming_init(model: nn.Module, mode: str) -> None:
    """TE-NAS's initialisation: Kaiming-normal conv/linear weights (``fan_in`` for the
    forward-only linear-region count, ``fan_out`` for the NTK), zero biases, BN (1, 0)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def ntk_condition(model: nn.Module, inputs: torch.Tensor) -> float:
    """kappa = lambda_max / lambda_min of the NTK on ``inputs`` (TE-NAS eq. 3), in train mode.

    The kernel of a batch is ill-conditioned, not undefined, when lambda_min <= 0 to rounding:
    TE-NAS maps such a ``nan`` to 1e5, and so does this function.
    """
    model.train()
    names = [n for n, p in model.named_parameters() if "weight" in n]
    params = {n: p.detach() for n, p in model.named_parameters()}
    fixed = {n: p for n, p in params.items() if n not in names}

    def logit_sums(weights: dict[str, torch.Tensor]) -> torch.Tensor:
        out = torch.func.functional_call(model, {**fixed, **weights}, (inputs,))
        return out.sum(dim=1)

    jac = torch.func.jacrev(logit_sums)({n: params[n] for n in names})
    j = torch.cat([g.reshape(len(inputs), -1) for g in jac.values()], dim=1).double()
    eig = torch.linalg.eigvalsh(j @ j.T)
    kappa = float(eig[-1] / eig[0])
    return kappa if math.isfinite(kappa) and kappa > 0 else 1e5


def linear_regions(model: nn.Module, inputs: torch.Tensor) -> int:
    """Distinct ReLU activation patterns of ``model`` over ``inputs`` (TE-NAS Sec. 3.2)."""
    model.train()
    codes = _relu_codes(model, inputs)
    return 0 if codes is None else int(torch.unique(codes, dim=0).shape[0])


def region_inputs(batch: torch.Tensor, samples: int, size: int = 3) -> torch.Tensor:
    """TE-NAS's region inputs from image data: one channel, ``size`` x ``size`` pixels.

    Channels are averaged and the image area-downsampled; rows are taken cyclically from
    ``batch`` when it has fewer than ``samples``.
    """
    x = batch.mean(dim=1, keepdim=True)
    x = nn.functional.adaptive_avg_pool2d(x, size)
    reps = -(-samples // len(x))
    return x.repeat(reps, 1, 1, 1)[:samples]


def prune_measures(
    ntk_net: PrunableSupernet,
    region_net: PrunableSupernet,
    alive: np.ndarray,
    candidates: Sequence[tuple[int, int]],
    ntk_inputs: torch.Tensor,
    region_x: torch.Tensor,
    seed: int,
) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int], float]]:
    """Relative changes of kappa and of the region count when each candidate (edge, op) is
    removed from the supernet ``alive``, on one fresh initialisation drawn from ``seed``.

    Returns ``(delta_kappa, delta_regions)`` with delta = (before - after) / before, the
    quantities TE-NAS ranks (its prune_func_rank). Every candidate is measured with the same
    weights as the unpruned supernet (common random numbers).
    """
    torch.manual_seed(seed)
    kaiming_init(ntk_net, "fan_out")
    kaiming_init(region_net, "fan_in")
    ntk_net.set_alive(alive)
    region_net.set_alive(alive)
    kappa0 = ntk_condition(ntk_net, ntk_inputs)
    regions0 = linear_regions(region_net, region_x)
    d_kappa, d_regions = {}, {}
    for edge, op in candidates:
        pruned = alive.copy()
        pruned[edge, op] = False
        ntk_net.set_alive(pruned)
        region_net.set_alive(pruned)
        d_kappa[edge, op] = (kappa0 - ntk_condition(ntk_net, ntk_inputs)) / kappa0
        regions = linear_regions(region_net, region_x)
        d_regions[edge, op] = (regions0 - regions) / max(regions0, 1)
    ntk_net.set_alive(alive)
    region_net.set_alive(alive)
    return d_kappa, d_regions
