"""The ``proxy`` evaluator: an architecture's zero-cost proxy score at initialisation.

Zero-cost proxies rank untrained networks in milliseconds to seconds instead of the minutes
or hours training takes (Abdelfattah et al., ICLR 2021; Mellor et al., ICML 2021, NASWOT).
As an evaluator a proxy serves two uses: the *screening* step of a study
(:mod:`archsearch.study.screening`), which ranks a large seeded sample with it and trains
only the best, and a study of its own (``--evaluator proxy``), e.g. to search the proxy's
favourite cell directly.

Scores are computed by :func:`archsearch.proxies.runner.score_architectures`: every network
is built by the space (at its size: NAS-Bench-201 C=16, N=5 unless the space is smaller),
initialised from the seed, and scored on one seeded batch. :meth:`ProxyEvaluator.evaluate_many`
scores many architectures in one call, on one batch, which is how screening is fast;
:meth:`ProxyEvaluator.evaluate` is a one-architecture call of it.

Proxy inputs (``data``): ``"gaussian"`` draws a standard-normal batch (data-free; the input
shape defaults to 3x32x32, NAS-Bench-201's CIFAR shape) and any other value names a dataset
of :mod:`archsearch.data`, from whose training images a seeded batch is taken;
``"fashion-mnist"`` images are resized and their channel repeated to fit ``input_shape``
(default 1x28x28), so that they can feed the 3x32x32 networks of NAS-Bench-201.

A *combination* (``proxy`` a list of names) reports every proxy's score and their combined
score under ``name`` (default ``"combined"``): the mean normalised rank or, with ``weights``
(e.g. the :class:`~archsearch.proxies.combine.ProxyWeights` of
:func:`archsearch.proxies.combine.fit_proxy_weights`, as a dict), the weighted sum of
standardised ranks. A rank needs a population, and two are used:

* :meth:`~ProxyEvaluator.evaluate` ranks one architecture against a *reference sample*: on
  first use, ``reference_size`` distinct architectures drawn from the space with a generator
  of their own (``default_rng([reference_seed, 2])``) are scored once, in one batch, with
  seed ``reference_seed``. A proxy's rank of an architecture is then the fraction of the
  reference's scores it beats, ties counted half
  (:func:`~archsearch.proxies.combine.reference_ranks`); the combination averages these
  ranks, or standardises them with the mean and standard deviation of the reference's own
  ranks and weights them (:func:`~archsearch.proxies.combine.reference_standardised_ranks`).
  The value depends on the architecture, the seed and the options only, never on which
  other candidates a study evaluates. The candidate itself is scored with the trial's
  seed, the reference once with ``reference_seed`` (rescoring it per trial seed would cost
  ``reference_size`` networks a trial). Scoring the reference costs ``reference_size``
  proxy evaluations once per evaluator and space: its wall seconds are
  :attr:`ProxyEvaluator.reference_seconds` and the value ``reference_seconds`` of the one
  result whose evaluation scored it.
* :meth:`~ProxyEvaluator.evaluate_many` ranks within the architectures scored together
  (``ranks="sample"``, the default), which is how screening ranks its sample; with
  ``ranks="reference"`` it gives what :meth:`~ProxyEvaluator.evaluate` gives.

This module imports torch only inside functions, so that naming the evaluator costs nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.space.base import Architecture, SearchSpace

GAUSSIAN = "gaussian"
#: the value every result carries besides the scores: wall seconds spent on the architecture
SECONDS = "proxy_seconds"
#: the value of the one result whose evaluation scored the reference sample: its wall seconds
REFERENCE_SECONDS = "reference_seconds"
#: how :meth:`ProxyEvaluator.evaluate_many` ranks a combination
RANKS = ("sample", "reference")


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
    proxies: Sequence[str],
    source: ProxyData | None = None,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every proxy of ``proxies`` for each architecture's network at initialisation:
    ``(scores, seconds)``, dicts of arrays in the order of ``archs``, higher is better.

    Every network is initialised from ``seed`` and scored on the same seeded batch
    (:func:`archsearch.proxies.runner.score_architectures`). With ``source.batch_size``
    set, the proxies read that many rows instead of their registered defaults (NASWOT's
    paper batch is 128; the registry's default is smaller for speed).
    """
    from archsearch.proxies.base import PROXIES, resolve_proxy_names
    from archsearch.proxies.runner import DEFAULT_BATCH
    from archsearch.proxies.runner import score_architectures as score_all

    source = source or ProxyData()
    resolve_proxy_names(list(proxies))  # loads the built-in proxies; unknown names fail here
    rows = source.batch_size or max(PROXIES.get(p).batch_size or DEFAULT_BATCH for p in proxies)
    inputs, targets, num_classes = proxy_batch(source, rows, seed)
    return score_all(
        space, archs, list(proxies), inputs, targets, num_classes=num_classes, seed=int(seed),
        batch_size=source.batch_size,
    )  # fmt: skip


def reference_sample(space: SearchSpace, size: int, seed: int) -> list[Architecture]:
    """``size`` distinct uniform samples of ``space`` (fewer only if the space is smaller).

    Drawn from ``default_rng([seed, 2])``, a generator of their own: neither the strategy's
    (``default_rng(seed)``) nor the screening's (``[seed, 1]``), so that the reference is not
    the very sample a study proposes or screens.
    """
    return space.distinct_samples(np.random.default_rng([int(seed), 2]), size)


@EVALUATORS.register("proxy")
class ProxyEvaluator(Evaluator):
    """Scores an architecture with a zero-cost proxy (or a combination) at initialisation.

    Values: each proxy's name -> its score, the combination's ``name`` -> the combined score
    when ``proxy`` names several (ranked within the reference sample of ``reference_size``
    architectures drawn with ``reference_seed``; see the module docstring), ``proxy_seconds``
    (network build and scoring) and, on the one result that scored the reference,
    ``reference_seconds``. The objective is the proxy's score (the combination's for
    several), maximised: every proxy is oriented "higher is better"
    (:mod:`archsearch.proxies.base`). Deterministic per seed (and ``reference_seed``).
    ``weights`` maps every proxy to its weight: a fitted
    :class:`~archsearch.proxies.combine.ProxyWeights`' ``as_dict()``, so that it is stored.
    """

    objective_direction = "max"
    reported_name = None

    def __init__(
        self,
        proxy: str | Sequence[str] = "synflow",
        *,
        weights: Mapping[str, float] | None = None,
        combined_name: str = "combined",
        data: str = GAUSSIAN,
        batch_size: int | None = None,
        input_shape: Sequence[int] | None = None,
        num_classes: int = 10,
        reference_size: int = 100,
        reference_seed: int = 0,
    ) -> None:
        names = [p.strip() for p in proxy.split(",")] if isinstance(proxy, str) else list(proxy)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ArchsearchError(f"evaluator 'proxy' needs proxy names, got {proxy!r}")
        if len(set(names)) != len(names):
            raise ArchsearchError(f"evaluator 'proxy': proxies repeat: {names}")
        if weights is not None:
            weights = {str(k): float(v) for k, v in dict(weights).items()}
            if set(weights) != set(names):
                raise ArchsearchError(
                    f"evaluator 'proxy': weights name {sorted(weights)}, proxies are {names}"
                )
        if batch_size is not None and batch_size < 2:
            raise ArchsearchError(f"evaluator 'proxy': batch_size must be >= 2, got {batch_size}")
        if int(reference_size) < 2:
            raise ArchsearchError(
                f"evaluator 'proxy': reference_size must be >= 2, got {reference_size}"
            )
        if combined_name in names or combined_name in (SECONDS, REFERENCE_SECONDS):
            raise ArchsearchError(f"evaluator 'proxy': combined_name {combined_name!r} is taken")
        self.proxies = names
        self.weights = weights
        self.combined_name = combined_name
        self.source = ProxyData(
            data, batch_size, None if input_shape is None else tuple(input_shape), num_classes
        )
        self.reference_size = int(reference_size)
        self.reference_seed = int(reference_seed)
        #: wall seconds spent scoring the reference sample (None until a combination needs it)
        self.reference_seconds: float | None = None
        self._references: dict[str, dict[str, np.ndarray]] = {}
        self._pending_seconds: float | None = None  # the reference's cost, not yet reported
        self._checked = False

    @property
    def combination(self) -> bool:
        return len(self.proxies) > 1

    @property
    def objective_name(self) -> str:  # type: ignore[override]
        return self.combined_name if self.combination else self.proxies[0]

    def check_space(self, space: SearchSpace) -> None:
        self._check_proxies()  # unknown proxy names are refused before any work

    def _check_proxies(self) -> None:
        if not self._checked:
            from archsearch.proxies.base import resolve_proxy_names

            resolve_proxy_names(self.proxies)  # unknown names: a configuration error
            self._checked = True

    def reference_scores(self, space: SearchSpace) -> dict[str, np.ndarray]:
        """Every proxy's scores of the reference sample of ``space`` (see the module
        docstring), computed on first use and kept; a combination ranks one architecture
        against them."""
        key = _space_key(space)
        if key not in self._references:
            self._check_proxies()
            start = time.perf_counter()
            archs = reference_sample(space, self.reference_size, self.reference_seed)
            scores, _ = score_architectures(
                space, archs, self.proxies, self.source, self.reference_seed
            )
            self._references[key] = {n: np.asarray(scores[n], dtype=float) for n in self.proxies}
            self.reference_seconds = time.perf_counter() - start
            self._pending_seconds = self.reference_seconds
        return self._references[key]

    def evaluate_many(
        self,
        archs: Sequence[Architecture],
        space: SearchSpace,
        *,
        seed: int = 0,
        ranks: str = "sample",
    ) -> list[EvalResult]:
        """Every architecture of ``archs`` scored on one batch with one initialisation seed.

        A combination's ranks are taken among ``archs`` (``ranks="sample"``, what screening
        ranks by) or within the reference sample (``ranks="reference"``, what
        :meth:`evaluate` gives each). An architecture a proxy cannot score gets NaN there
        (and ranks last when screening).
        """
        if ranks not in RANKS:
            raise ArchsearchError(f"evaluator 'proxy': ranks must be one of {RANKS}, not {ranks!r}")
        self._check_proxies()
        if not archs:
            return []
        reference = None
        if self.combination and ranks == "reference":
            reference = self.reference_scores(space)
        scores, seconds = score_architectures(space, archs, self.proxies, self.source, seed)
        columns = {n: np.asarray(scores[n], dtype=float) for n in self.proxies}
        if self.combination:
            from archsearch.proxies.combine import (
                ProxyWeights,
                rank_average,
                reference_rank_average,
            )

            if self.weights is None:
                columns[self.combined_name] = (
                    rank_average(scores, self.proxies)
                    if reference is None
                    else reference_rank_average(scores, reference, self.proxies)
                )
            else:
                w = np.array([self.weights[n] for n in self.proxies])
                fitted = ProxyWeights(tuple(self.proxies), w, float("nan"), "given")
                columns[self.combined_name] = fitted.combine(scores, reference)
        total = np.nansum(np.vstack([seconds[n] for n in self.proxies]), axis=0)
        results = [
            EvalResult(
                values={
                    **{n: float(c[i]) for n, c in columns.items()},
                    SECONDS: float(total[i]),
                }
            )
            for i in range(len(archs))
        ]
        if reference is not None and self._pending_seconds is not None:
            results[0].values[REFERENCE_SECONDS] = self._pending_seconds  # reported once
            self._pending_seconds = None
        return results

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        """One architecture's scores; a combination ranks it within the reference sample:
        :meth:`evaluate_many` of a one-element list with ``ranks="reference"``."""
        (result,) = self.evaluate_many([arch], space, seed=seed, ranks="reference")
        return result


def _space_key(space: SearchSpace) -> str:
    """Which space a reference sample belongs to: its stored options (its identity when it
    has none), so that one evaluator used on two spaces keeps a reference for each."""
    try:
        return json.dumps({"type": type(space).__name__, **space.config()}, sort_keys=True,
                          default=str)  # fmt: skip
    except Exception:  # noqa: BLE001  (a space without options: its identity will do)
        return f"id:{id(space)}"
