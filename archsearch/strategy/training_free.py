"""Training-free search: NASWOT search, TE-NAS pruning, and proxy warm-start for any strategy.

All three rank architectures by zero-cost proxies computed at initialisation instead of by
training, and all three keep the ask/tell contract of :mod:`archsearch.strategy.base`: their
proxy work happens inside the first ``ask()``, is seeded by the strategy's seed, and is
therefore replayed identically on resume. Proxies need torch, which a strategy must not
import at module level, so :mod:`archsearch.proxies` is imported inside methods.

Proxy inputs (``data``): ``"gaussian"`` draws a standard-normal batch (data-free; the input
shape defaults to 3x32x32, NAS-Bench-201's CIFAR shape) and any other value names a dataset
of :mod:`archsearch.data`, from whose training images a seeded batch is taken;
``"fashion-mnist"`` images are resized and their channel repeated to fit ``input_shape``
(default 1x28x28), so that they can feed the 3x32x32 networks of NAS-Bench-201. NASWOT and
warm-start score the networks the space builds, at the space's size (NAS-Bench-201: C=16,
N=5 unless the space was made smaller); TE-NAS builds its own small supernets.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Observation, Strategy

GAUSSIAN = "gaussian"


# ------------------------------------------------------------------ proxy scoring
@dataclass(frozen=True)
class ProxyData:
    """Where proxy batches come from (see the module docstring) and their size."""

    data: str = GAUSSIAN
    batch_size: int | None = None
    input_shape: tuple[int, ...] | None = None
    num_classes: int = 10

    def options(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "batch_size": self.batch_size,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "num_classes": self.num_classes,
        }


def proxy_batch(source: ProxyData, size: int, seed: int):
    """A seeded batch ``(inputs, targets, num_classes)`` of ``size`` rows (torch tensors).

    Fashion-MNIST images are resized and their channel repeated when ``input_shape`` asks for
    another shape (e.g. 3x32x32, to score the very network NAS-Bench-201 trained on CIFAR).
    """
    from archsearch.proxies.runner import fashion_mnist_batch, random_batch

    if source.data == GAUSSIAN:
        shape = tuple(source.input_shape or (3, 32, 32))
        inputs, targets = random_batch(size, shape, source.num_classes, seed=int(seed))
        return inputs, targets, source.num_classes
    if source.data == "fashion-mnist":
        shape = tuple(source.input_shape or (1, 28, 28))
        inputs, targets = fashion_mnist_batch(size, shape, source.num_classes, seed=int(seed))
        return inputs, targets, source.num_classes
    from archsearch.data import load_dataset, take

    data = load_dataset(source.data)
    if source.input_shape is not None and tuple(source.input_shape) != data.input_shape:
        raise ArchsearchError(
            f"dataset {source.data!r} has inputs {data.input_shape}, not {source.input_shape}"
        )
    inputs, targets = take(data.x_train, data.y_train, size, seed=int(seed))
    return inputs, targets, data.num_classes


def score_architectures(
    space: SearchSpace,
    archs: Sequence[Architecture],
    proxy: str,
    source: ProxyData | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Proxy ``proxy`` of each architecture's network at initialisation, higher is better.

    Every network is initialised from ``seed`` and scored on the same seeded batch
    (:func:`archsearch.proxies.runner.score_architectures`). With ``source.batch_size``
    set, the proxy reads that many rows instead of its registered default (NASWOT's paper
    batch is 128; the registry's default is smaller for speed).
    """
    from archsearch.proxies.base import PROXIES, resolve_proxy_names
    from archsearch.proxies.runner import DEFAULT_BATCH
    from archsearch.proxies.runner import score_architectures as score_all

    source = source or ProxyData()
    resolve_proxy_names([proxy])  # loads the built-in proxies; unknown names fail here
    rows = source.batch_size or PROXIES.get(proxy).batch_size or DEFAULT_BATCH
    inputs, targets, num_classes = proxy_batch(source, rows, seed)
    scores, _ = score_all(
        space, archs, [proxy], inputs, targets, num_classes=num_classes, seed=int(seed),
        batch_size=source.batch_size,
    )  # fmt: skip
    return scores[proxy]


# ------------------------------------------------------------------ ranked proposals
class _ProxyRanked(Strategy):
    """Proposes a seeded sample of architectures in decreasing proxy score, then delegates.

    The sample is drawn and scored on the first ``ask()``, from a generator and a proxy seed
    derived from the strategy's seed, so the same seed gives the same ranking and a resumed
    study recomputes it identically.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        proxy: str,
        sample_size: int,
        top_k: int,
        data: str,
        batch_size: int | None,
        input_shape: Sequence[int] | None,
        num_classes: int,
    ) -> None:
        super().__init__(space, seed)
        if sample_size < 1 or not 0 <= top_k <= sample_size:
            raise ArchsearchError(
                f"need sample_size >= 1 and 0 <= top_k <= sample_size, got {sample_size}, {top_k}"
            )
        self.proxy = proxy
        self.sample_size = sample_size
        self.top_k = top_k
        self.source = ProxyData(
            data, batch_size, None if input_shape is None else tuple(input_shape), num_classes
        )
        self.ranked: list[tuple[Architecture, float]] | None = None
        self.proxy_seconds = 0.0
        self._queue: list[Architecture] = []

    def ranking(self) -> list[tuple[Architecture, float]]:
        """The scored sample, best first (computed on first use)."""
        if self.ranked is None:
            started = time.process_time()
            sample = self._distinct_sample()
            scores = score_architectures(self.space, sample, self.proxy, self.source, self.seed)
            # NaN (unscorable) ranks last; ties keep the sampling order
            keyed = np.where(np.isnan(scores), -np.inf, scores)
            order = np.argsort(-keyed, kind="stable")
            self.ranked = [(sample[i], float(scores[i])) for i in order]
            self._queue = [a for a, _ in self.ranked[: self.top_k]]
            self.proxy_seconds = time.process_time() - started
        return self.ranked

    def _distinct_sample(self) -> list[Architecture]:
        """``sample_size`` distinct uniform samples (fewer only if the space is smaller).

        Drawn from a generator of their own, derived from the seed: were they drawn from
        ``self.rng``, a wrapped strategy seeded alike would re-propose the very architectures
        the proxy ranked low, in the same order.
        """
        rng = np.random.default_rng([self.seed, 1])
        sample: list[Architecture] = []
        chosen: set[Architecture] = set()
        for _ in range(100 * self.sample_size):
            if len(sample) == self.sample_size:
                break
            arch = self.space.sample(rng)
            if arch not in chosen:
                chosen.add(arch)
                sample.append(arch)
        return sample

    def _next_ranked(self) -> Architecture | None:
        self.ranking()
        while self._queue:
            arch = self._queue.pop(0)
            if arch not in self.seen:
                self.seen.add(arch)
                return arch
        return None

    def options(self) -> dict[str, Any]:
        return {
            "proxy": self.proxy,
            "sample_size": self.sample_size,
            **self.source.options(),
        }


@STRATEGIES.register("naswot")
class NASWOTSearch(_ProxyRanked):
    """NASWOT search (Mellor et al., ICML 2021, Algorithm 1): score ``sample_size`` random
    architectures at initialisation and take the best.

    The score is the log-determinant of the Hamming kernel of ReLU codes on one batch (the
    ``naswot`` proxy; any registered proxy can be given instead). The first ``ask()`` returns
    the best-scoring architecture, i.e. the algorithm's answer; further asks return the rest
    of the sample in decreasing score, then uniform samples, so a study with a budget of one
    evaluation *is* NASWOT and a larger budget trains its runners-up. The paper uses a batch
    of 128 CIFAR-10 images; ``batch_size=None`` uses the proxy's registered default.
    """

    name = "naswot"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        sample_size: int = 10,
        proxy: str = "naswot",
        data: str = GAUSSIAN,
        batch_size: int | None = None,
        input_shape: Sequence[int] | None = None,
        num_classes: int = 10,
    ) -> None:
        super().__init__(
            space, seed, proxy, sample_size, sample_size, data, batch_size, input_shape,
            num_classes,
        )  # fmt: skip

    def ask(self) -> Architecture:
        arch = self._next_ranked()
        return arch if arch is not None else self.sample_unseen()

    @property
    def choice(self) -> Architecture:
        """The architecture NASWOT selects: the best-scoring of its sample."""
        return self.ranking()[0][0]


@STRATEGIES.register("warmstart")
class ProxyWarmStart(_ProxyRanked):
    """Proxy warm-start for any strategy: evaluate the proxy's favourites first.

    A large seeded sample (``sample_size``) is ranked by ``proxy``; the first ``top_k`` asks
    return its best ``top_k`` architectures, and every later ask goes to the ``inner``
    strategy (built with the same seed and ``inner_options``). Every tell goes to the inner
    strategy as well, so it starts from the proxy's favourites: evolution's population,
    local search's incumbent, a predictor's training set. This is the warm-start use of
    zero-cost proxies studied by Abdelfattah et al. (ICLR 2021, Sec. 5: "warmup").
    """

    name = "warmstart"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        inner: str = "evolution",
        inner_options: dict[str, Any] | None = None,
        proxy: str = "synflow",
        sample_size: int = 100,
        top_k: int = 10,
        data: str = GAUSSIAN,
        batch_size: int | None = None,
        input_shape: Sequence[int] | None = None,
        num_classes: int = 10,
    ) -> None:
        super().__init__(
            space, seed, proxy, sample_size, top_k, data, batch_size, input_shape, num_classes
        )
        if inner == self.name:
            raise ArchsearchError("warmstart cannot wrap itself")
        self.inner_name = inner
        self.inner_options = dict(inner_options or {})
        self.inner: Strategy = STRATEGIES.get(inner)(space, seed=seed, **self.inner_options)

    def ask(self) -> Architecture:
        return self.propose()[0]

    def propose(self) -> tuple[Architecture, float | None]:
        arch = self._next_ranked()
        if arch is not None:
            self.inner.seen.add(arch)  # the inner strategy must not propose it again
            return arch, None
        arch, fidelity = self.inner.propose()
        self.seen.add(arch)
        return arch, fidelity

    def _observe(self, observation: Observation) -> None:
        self.inner.tell(
            observation.arch,
            observation.values,
            feasible=observation.feasible,
            fidelity=observation.fidelity,
        )

    def options(self) -> dict[str, Any]:
        return {
            "inner": self.inner_name,
            "inner_options": self.inner_options,
            "top_k": self.top_k,
            **super().options(),
        }


# ------------------------------------------------------------------ TE-NAS
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

    from archsearch.proxies.tenas_supernet import PrunableSupernet, prune_measures, region_inputs

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


#: :func:`tenas_prune`'s options and their defaults, which the TE-NAS strategy accepts
TENAS_OPTIONS: dict[str, Any] = {
    name: parameter.default
    for name, parameter in inspect.signature(tenas_prune).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "seed"
}


@STRATEGIES.register("tenas")
class TENAS(Strategy):
    """TE-NAS as a strategy: the first ``ask()`` returns the pruned architecture.

    The pruning (:func:`tenas_prune`) runs inside that first ask, seeded by the strategy's
    seed. TE-NAS yields one architecture; later asks explore its one-edit neighbourhood in a
    seeded order and then fall back to uniform samples, so a larger budget is still spent
    near the training-free choice.
    """

    name = "tenas"

    def __init__(self, space: SearchSpace, seed: int = 0, **options: Any) -> None:
        """``options`` are :func:`tenas_prune`'s keyword arguments (unnamed ones keep its
        defaults), so the strategy and the function cannot drift apart."""
        super().__init__(space, seed)
        unknown = sorted(set(options) - set(TENAS_OPTIONS))
        if unknown:
            raise ArchsearchError(
                f"unknown option(s) {unknown} for strategy 'tenas';"
                f" options: {sorted(TENAS_OPTIONS)}"
            )
        self._options = {**TENAS_OPTIONS, **options}
        if self._options["input_shape"] is not None:
            self._options["input_shape"] = list(self._options["input_shape"])
        self.result: TENASResult | None = None
        self._queue: list[Architecture] = []

    def pruned(self) -> TENASResult:
        """The TE-NAS result (computed on first use)."""
        if self.result is None:
            self.result = tenas_prune(self.space, seed=self.seed, **self._options)
            neighbours = self.space.neighbours(self.result.arch)
            order = self.rng.permutation(len(neighbours))
            self._queue = [self.result.arch] + [neighbours[i] for i in order]
        return self.result

    def ask(self) -> Architecture:
        self.pruned()
        while self._queue:
            arch = self._queue.pop(0)
            if arch not in self.seen:
                self.seen.add(arch)
                return arch
        return self.sample_unseen()

    def options(self) -> dict[str, Any]:
        return dict(self._options)
