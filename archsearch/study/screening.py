"""Screening: a cheap evaluator ranks a seeded sample, and the study evaluates its best first.

Training-free NAS ranks architectures by a score computed at initialisation instead of by
training. Here it is one step of a study, for every strategy: before the strategy's first
proposal, the study draws a seeded sample of ``sample_size`` distinct architectures, scores
them with the *screening* evaluator (usually ``proxy``, :mod:`archsearch.evaluate.proxy`) and
evaluates the ``top_k`` best with the *study's* evaluator, telling each result to the
strategy, which then proposes as usual (screened architectures are marked seen, so it never
proposes them again). Two published methods are special cases:

* NASWOT search (Mellor et al., ICML 2021, Algorithm 1): score N random cells with the
  ``naswot`` proxy and take the best: screening with ``top_k = sample_size`` followed by
  random search, so a budget of one evaluation *is* NASWOT and a larger one trains the
  runners-up, then uniform samples (``--strategy naswot``).
* The proxy warm-up of Abdelfattah et al. (ICLR 2021, Sec. 5): evaluate a proxy's ``top_k``
  favourites of a large sample first, so that evolution's population, local search's
  incumbent or a predictor's training set start from them (``--strategy warmstart``).

A third kind ranks no sample: ``{"tenas": {...}}`` screens the one cell TE-NAS prunes its
supernet down to (Chen et al., ICLR 2021; :func:`archsearch.oneshot.tenas.tenas_prune`), so
``--strategy tenas`` evaluates that cell first and then searches at random.

In a study configuration::

    "screen": {"evaluator": {"name": "proxy", "proxy": "synflow"},
               "sample_size": 100, "top_k": 10}

Resume is exact: the ranking is stored in the study's meta (``screen_ranking``), each trial
records whether the screening or the strategy chose it (``TrialRecord.origin``), and the
replay marks screened trials seen instead of asking the strategy for them. The screening's
cost counts in the study's elapsed time and is reported in ``summary()["screen"]``.

The strategy aliases ``naswot``, ``warmstart`` and ``tenas`` of earlier releases are
translated into a strategy plus a screening by :func:`expand_aliases` when a configuration
is built. This module imports neither torch nor the proxies: the screening evaluator is
built through the registry when the ranking is first needed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace

#: the study meta key that holds the stored ranking
META_KEY = "screen_ranking"

#: options of the strategy aliases, with their defaults (those of the strategies they replace)
PROXY_DATA_OPTIONS = {"data": "gaussian", "batch_size": None, "input_shape": None,
                      "num_classes": 10}  # fmt: skip
NASWOT_OPTIONS = {"sample_size": 10, "proxy": "naswot", **PROXY_DATA_OPTIONS}
WARMSTART_OPTIONS = {"inner": "evolution", "inner_options": None, "proxy": "synflow",
                     "sample_size": 100, "top_k": 10, **PROXY_DATA_OPTIONS}  # fmt: skip
ALIASES = ("naswot", "warmstart", "tenas")


def check_ranking(stored: Any) -> None:
    """Refuse a stored ranking (meta ``screen_ranking``) of the wrong shape, which only a
    crafted or damaged file holds: :meth:`Ranking.from_meta` and a study's summary read it."""
    shape = isinstance(stored, Mapping) and {"archs", "scores", "top_k", "seconds"} <= set(stored)
    if shape:
        archs, scores, top_k, seconds = (stored[k] for k in ("archs", "scores", "top_k", "seconds"))
        shape = (
            isinstance(archs, list)
            and all(isinstance(a, Mapping) for a in archs)
            and isinstance(scores, list)
            and all(s is None or _is_number(s) for s in scores)
            and isinstance(top_k, int) and not isinstance(top_k, bool) and top_k >= 0
            and _is_number(seconds)
        )  # fmt: skip
    if not shape:
        raise ArchsearchError(
            f"the stored screening ranking is not {{archs, scores, top_k, seconds}}: {stored!r:.60}"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Ranking:
    """A screening's result: the ranked architectures (best first), their scores (None where
    the evaluator could not score), how many the study evaluates, and what it cost."""

    archs: list[Architecture]
    scores: list[float | None]
    top_k: int
    seconds: float

    @property
    def top(self) -> list[Architecture]:
        return self.archs[: self.top_k]

    def to_meta(self, space: SearchSpace) -> dict[str, Any]:
        return {
            "archs": [space.to_json(a) for a in self.archs],
            "scores": self.scores,
            "top_k": self.top_k,
            "seconds": self.seconds,
        }

    @classmethod
    def from_meta(cls, stored: Mapping[str, Any], space: SearchSpace) -> Ranking:
        return cls(
            archs=[space.from_json(a) for a in stored["archs"]],
            scores=list(stored["scores"]),
            top_k=int(stored["top_k"]),
            seconds=float(stored["seconds"]),
        )


@dataclass(frozen=True)
class Screening:
    """What a study screens before its strategy proposes; see the module docstring.

    Either ``evaluator`` (a registry section, e.g. ``{"name": "proxy", "proxy": "naswot"}``)
    ranks a seeded sample of ``sample_size`` architectures and the best ``top_k`` are
    evaluated, or ``tenas`` (options of :func:`~archsearch.oneshot.tenas.tenas_prune`) gives
    the one pruned cell.
    """

    evaluator: Mapping[str, Any] | None = None
    sample_size: int = 100
    top_k: int = 10
    tenas: Mapping[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if (self.evaluator is None) == (self.tenas is None):
            raise ArchsearchError(
                "a screen section names an evaluator ({'evaluator': {'name': 'proxy', ...}, "
                "'sample_size': N, 'top_k': K}) or TE-NAS ({'tenas': {...}}), not both"
            )
        if self.evaluator is not None:
            if not isinstance(self.evaluator, Mapping) or "name" not in self.evaluator:
                raise ArchsearchError(f"screen: evaluator needs a name, got {self.evaluator!r}")
            for key in ("sample_size", "top_k"):
                value = getattr(self, key)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ArchsearchError(f"screen: {key} must be an integer, got {value!r}")
            if self.sample_size < 1 or not 0 <= self.top_k <= self.sample_size:
                raise ArchsearchError(
                    "screen: need sample_size >= 1 and 0 <= top_k <= sample_size, got "
                    f"{self.sample_size}, {self.top_k}"
                )
        elif not isinstance(self.tenas, Mapping):
            raise ArchsearchError(f"screen: tenas takes options, got {self.tenas!r}")

    @classmethod
    def from_config(cls, section: Any) -> Screening | None:
        """The screening a configuration's ``screen`` section declares (None: none)."""
        if section is None:
            return None
        if not isinstance(section, Mapping):
            raise ArchsearchError(f"screen must be a mapping, got {section!r}")
        unknown = set(section) - {"evaluator", "sample_size", "top_k", "tenas"}
        if unknown:
            raise ArchsearchError(
                f"screen: unknown key(s) {sorted(unknown)}; keys: evaluator, sample_size, "
                "top_k, tenas"
            )
        if "tenas" in section:
            if set(section) != {"tenas"}:
                raise ArchsearchError("screen: tenas takes no evaluator, sample_size or top_k")
            return cls(tenas=dict(section["tenas"] or {}))
        return cls(
            evaluator=section.get("evaluator"),
            sample_size=section.get("sample_size", 100),
            top_k=section.get("top_k", 10),
        )

    def to_config(self) -> dict[str, Any]:
        if self.tenas is not None:
            return {"tenas": dict(self.tenas)}
        return {
            "evaluator": dict(self.evaluator or {}),
            "sample_size": self.sample_size,
            "top_k": self.top_k,
        }

    def check(self, space: SearchSpace) -> None:
        """Build what the screening needs (validating its options) without running it."""
        if self.tenas is not None:
            from archsearch.oneshot.tenas import TENAS_OPTIONS

            unknown = sorted(set(self.tenas) - set(TENAS_OPTIONS))
            if unknown:
                raise ArchsearchError(
                    f"unknown TE-NAS option(s) {unknown}; options: {sorted(TENAS_OPTIONS)}"
                )
            if space.name != "nb201":
                raise ArchsearchError(f"TE-NAS prunes the nb201 space, got {space.name!r}")
        else:
            self.build_evaluator().check_space(space)

    def build_evaluator(self) -> Any:
        from archsearch.components import build_evaluator

        return build_evaluator(self.evaluator)

    def rank(self, space: SearchSpace, seed: int) -> Ranking:
        """Run the screening: the ranked architectures, best first."""
        started = time.perf_counter()
        if self.tenas is not None:
            from archsearch.oneshot.tenas import tenas_prune

            result = tenas_prune(space, seed=seed, **self.tenas)
            archs, scores, top_k = [result.arch], [None], 1
        else:
            sample = distinct_sample(space, seed, self.sample_size)
            ranked = rank_sample(self.build_evaluator(), space, sample, seed)
            archs, scores = [a for a, _ in ranked], [_finite_or_none(s) for _, s in ranked]
            top_k = min(self.top_k, len(archs))
        return Ranking(archs, scores, top_k, time.perf_counter() - started)


def distinct_sample(space: SearchSpace, seed: int, size: int) -> list[Architecture]:
    """``size`` distinct uniform samples (fewer only if the space is smaller).

    Drawn from a generator of their own, ``default_rng([seed, 1])``: were they drawn from the
    strategy's generator (``default_rng(seed)``), a strategy seeded alike would re-propose
    the very architectures the screening ranked low, in the same order.
    """
    return space.distinct_samples(np.random.default_rng([seed, 1]), size)


def screening_scores(
    evaluator: Any, space: SearchSpace, archs: Sequence[Architecture], seed: int
) -> np.ndarray:
    """The evaluator's objective for each architecture, oriented higher-is-better; NaN where
    it failed. Evaluators with ``evaluate_many`` (the proxy evaluator) score all at once."""
    name = evaluator.objective_name
    sign = -1.0 if getattr(evaluator, "objective_direction", "max") == "min" else 1.0
    many = getattr(evaluator, "evaluate_many", None)
    if many is not None:
        results = many(list(archs), space, seed=seed)
    else:
        results = []
        for arch in archs:
            try:
                results.append(evaluator.evaluate(arch, space, seed=seed))
            except ArchsearchError:
                raise
            except Exception:  # noqa: BLE001  (an unscorable candidate ranks last)
                results.append(None)
    values = [math.nan if r is None else r.values.get(name, math.nan) for r in results]
    return sign * np.asarray(values, dtype=float)


def rank_sample(
    evaluator: Any, space: SearchSpace, sample: Sequence[Architecture], seed: int
) -> list[tuple[Architecture, float]]:
    """``sample`` scored by ``evaluator`` (seeded with ``seed``), best first: NaN (unscorable)
    ranks last and ties keep the sampling order, as NASWOT's argmax does."""
    scores = screening_scores(evaluator, space, sample, seed)
    keyed = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-keyed, kind="stable")
    return [(sample[i], float(scores[i])) for i in order]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------ strategy aliases
def expand_aliases(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with a strategy alias of earlier releases translated into a strategy and a
    ``screen`` section (configurations without an alias come back unchanged):

    * ``naswot`` (sample_size, proxy, data, batch_size, input_shape, num_classes): random
      search after screening the whole sample (``top_k = sample_size``);
    * ``warmstart`` (inner, inner_options, top_k, and naswot's options): the ``inner``
      strategy after screening ``top_k``;
    * ``tenas`` (options of :func:`~archsearch.oneshot.tenas.tenas_prune`): random search
      after the pruned cell.

    The strategy is seeded with the study seed and its generator is untouched by the
    screening, so the proposals are those of the strategies these aliases replace.
    """
    strategy = config.get("strategy")
    if not isinstance(strategy, Mapping) or strategy.get("name") not in ALIASES:
        return dict(config)
    options = dict(strategy)
    name = options.pop("name")
    if config.get("screen") is not None:
        raise ArchsearchError(
            f"strategy {name!r} is itself a screening; give a plain strategy with 'screen'"
        )
    if name == "tenas":
        return {**config, "strategy": {"name": "random"}, "screen": {"tenas": options}}
    defaults = NASWOT_OPTIONS if name == "naswot" else WARMSTART_OPTIONS
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ArchsearchError(
            f"unknown option(s) {unknown} for strategy {name!r}; options: {sorted(defaults)}"
        )
    options = {**defaults, **options}
    evaluator = {"name": "proxy", "proxy": options["proxy"],
                 **{k: options[k] for k in PROXY_DATA_OPTIONS}}  # fmt: skip
    if name == "naswot":
        inner = {"name": "random"}
        top_k = options["sample_size"]
    else:
        if options["inner"] in ALIASES:
            raise ArchsearchError(f"warmstart cannot wrap {options['inner']!r}")
        inner = {"name": options["inner"], **dict(options["inner_options"] or {})}
        top_k = options["top_k"]
    screen = {"evaluator": evaluator, "sample_size": options["sample_size"], "top_k": top_k}
    return {**config, "strategy": inner, "screen": screen}
