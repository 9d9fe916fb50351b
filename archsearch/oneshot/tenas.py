"""TE-NAS (Chen, Gong & Wang, ICLR 2021): training-free pruning of the NAS-Bench-201 supernet.

TE-NAS never trains its supernet: it prunes it, one operation per edge per round, by two
measures of the network at initialisation (the NTK's condition number and the number of
linear regions, :mod:`archsearch.oneshot.tenas_supernet`). It lives beside the weight-sharing
methods because, like them, it selects one architecture from a supernet that holds them all;
unlike them it needs no training data split and no epochs, so it is a function
(:func:`tenas_prune`) rather than a :class:`~archsearch.oneshot.base.OneShotMethod`. A study
uses it through its screening step (``--strategy tenas``: the first trial is the pruned cell;
see :mod:`archsearch.study.screening`).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.evaluate.proxy import GAUSSIAN, ProxyData, proxy_batch
from archsearch.space.base import Architecture, SearchSpace


@dataclass
class TENASResult:
    """The outcome of :func:`tenas_prune`: the architecture and how it was reached."""

    arch: Architecture
    #: per round: the (edge label, operation) pruned, in edge order
    rounds: list[list[tuple[str, str]]] = field(default_factory=list)
    cpu_seconds: float = 0.0


def _dense_ranks(values: Sequence[float], descending: bool) -> list[int]:
    """Rank 0 for the best; equal values share a rank and the next distinct value gets the
    next integer (the ranking of TE-NAS's prune_func_rank)."""
    order = sorted(range(len(values)), key=lambda i: -values[i] if descending else values[i])
    ranks = [0] * len(values)
    for pos, i in enumerate(order):
        if pos > 0:
            prev = order[pos - 1]
            ranks[i] = ranks[prev] + (values[i] != values[prev])
    return ranks


def _round_significant(x: float, digits: int) -> float:
    """Round to ``digits`` significant figures, so that near-equal changes tie (TE-NAS's
    ``precision`` option, default 3)."""
    return float(f"{x:.{digits - 1}e}") if np.isfinite(x) and x != 0 else x


def tenas_prune(
    space: SearchSpace,
    *,
    seed: int = 0,
    data: str = GAUSSIAN,
    batch_size: int = 16,
    repeat: int = 3,
    channels: int = 3,
    cells_per_stage: int = 1,
    region_samples: int = 1000,
    precision: int = 3,
    prune_none_first: bool = True,
    input_shape: Sequence[int] | None = None,
    num_classes: int = 10,
) -> TENASResult:
    """TE-NAS (Chen et al., ICLR 2021, Algorithm 1) on the NAS-Bench-201 cell space.

    Start from the supernet in which every edge holds every operation. Each round, for every
    alive operation o of every edge that still has more than one, measure with the same
    weights the relative change of the NTK condition number, dk(o) = (k - k_without_o) / k,
    and of the number of linear regions, dR(o) = (R - R_without_o) / R, averaged over
    ``repeat`` initialisations. Rank dk descending (removing o makes the network better
    conditioned) and dR ascending (removing o loses few regions); on each edge prune the
    operation with the smallest rank sum. Rounds repeat until one operation per edge is left.

    As in the authors' code (prune_tenas.py): the NTK supernet is C=3, N=1 with a stem, fed
    ``batch_size`` inputs; regions are counted on a thin supernet (C=1, N=1, no stem) over
    ``region_samples`` one-channel 3x3 inputs; relative changes are rounded to ``precision``
    significant figures; and ``none`` is removed from every edge before the first round
    (``prune_none_first``). Inputs come from ``data`` (``"gaussian"`` or a dataset name);
    with Gaussian 3x3 inputs nearly every sample falls in its own region, so dR carries
    little signal and the ranking is mostly the NTK's (see benchmarks/training_free.py).
    """
    from archsearch.space.nb201 import EDGES, OPERATIONS, NB201Space, edge_label

    if not isinstance(space, NB201Space):
        raise ArchsearchError(f"TE-NAS prunes the nb201 space, got {space.name!r}")
    if repeat < 1 or batch_size < 2 or region_samples < 2:
        raise ArchsearchError(
            f"need repeat >= 1, batch_size >= 2, region_samples >= 2, got {repeat},"
            f" {batch_size}, {region_samples}"
        )
    import torch

    from archsearch.oneshot.tenas_supernet import PrunableSupernet, prune_measures, region_inputs

    started = time.process_time()
    source = ProxyData(data, batch_size, None if input_shape is None else tuple(input_shape),
                       num_classes)  # fmt: skip
    inputs, _, classes = proxy_batch(source, batch_size, seed)
    if data == GAUSSIAN:
        generator = torch.Generator().manual_seed(int(seed) + 1)
        region_x = torch.randn((region_samples, 1, 3, 3), generator=generator)
    else:
        region_x = region_inputs(proxy_batch(source, region_samples, seed + 1)[0], region_samples)
    ntk_net = PrunableSupernet(inputs.shape[1], classes, channels, cells_per_stage, stem=True)
    region_net = PrunableSupernet(1, classes, channels=1, cells_per_stage=1, stem=False)

    alive = np.ones((len(EDGES), len(OPERATIONS)), dtype=bool)
    if prune_none_first:
        alive[:, OPERATIONS.index("none")] = False
    result_rounds: list[list[tuple[str, str]]] = []
    round_index = 0
    while (alive.sum(axis=1) > 1).any():
        candidates = [
            (e, int(o))
            for e in range(len(EDGES))
            if alive[e].sum() > 1
            for o in np.flatnonzero(alive[e])
        ]
        d_kappa = {c: 0.0 for c in candidates}
        d_regions = {c: 0.0 for c in candidates}
        with torch.random.fork_rng(devices=[]):
            for r in range(repeat):
                init_seed = (int(seed) * 1_000_003 + round_index * 101 + r) % (2**31 - 1)
                dk, dr = prune_measures(
                    ntk_net, region_net, alive, candidates, inputs, region_x, init_seed
                )
                for c in candidates:
                    d_kappa[c] += dk[c] / repeat
                    d_regions[c] += dr[c] / repeat
        kappa_values = [_round_significant(d_kappa[c], precision) for c in candidates]
        region_values = [_round_significant(d_regions[c], precision) for c in candidates]
        rank_k = _dense_ranks(kappa_values, descending=True)
        rank_r = _dense_ranks(region_values, descending=False)
        total = {c: rank_k[i] + rank_r[i] for i, c in enumerate(candidates)}
        pruned = []
        for e in range(len(EDGES)):
            mine = [c for c in candidates if c[0] == e]
            if mine:
                _, op = min(mine, key=lambda c: total[c])  # ties: the first operation
                alive[e, op] = False
                pruned.append((edge_label(*EDGES[e]), OPERATIONS[op]))
        result_rounds.append(pruned)
        round_index += 1
    chosen = {edge_label(*EDGES[e]): OPERATIONS[int(np.flatnonzero(alive[e])[0])]
              for e in range(len(EDGES))}  # fmt: skip
    return TENASResult(
        arch=space.make(chosen),
        rounds=result_rounds,
        cpu_seconds=time.process_time() - started,
    )


#: :func:`tenas_prune`'s options and their defaults, which the TE-NAS screening accepts
TENAS_OPTIONS: dict[str, Any] = {
    name: parameter.default
    for name, parameter in inspect.signature(tenas_prune).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "seed"
}
