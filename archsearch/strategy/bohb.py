"""BOHB: Hyperband whose new architectures come from a TPE-style model (Falkner et al., ICML 2018).

BOHB keeps Hyperband's brackets (:mod:`archsearch.strategy.hyperband`) and replaces uniform
sampling of each bracket's first rung by the model of Falkner et al., Sec. 3.1 and
Algorithm 2, a Tree Parzen Estimator (Bergstra et al., NeurIPS 2011):

1. With probability ``random_fraction`` (1/3 in the paper), sample uniformly: keeps the
   convergence guarantee of Hyperband and protects against a misleading model.
2. Otherwise take the observations at the *highest* fidelity that has at least
   ``n_min + 2`` of them, ``n_min = d + 1`` for ``d`` decisions (Eq. 3): high-fidelity
   results are the most informative as soon as there are enough to fit a model.
3. Split them by quantile into the best ``max(n_min, q * n)`` ("good", ``q = 0.15``) and the
   rest ("bad", failures included); fit a kernel density ``l(x)`` on the good ones and
   ``g(x)`` on the bad ones.
4. Draw ``candidates`` (64) architectures from ``l`` with every bandwidth widened by
   ``bandwidth_factor`` (3), and propose the one that maximises ``l(x) / g(x)`` (which
   maximises expected improvement, Bergstra et al., Eq. 3).

Decisions are categorical, so each density is a product kernel of Aitchison-Aitken kernels
(Aitchison & Aitken, Biometrika 1976), as statsmodels' ``KDEMultivariate`` (which the
reference implementation, HpBandSter, uses) builds for unordered variables::

    l(x) = 1/n sum_i prod_d k_d(x_d, x_id),
    k_d(x_d, x_id) = 1 - lambda_d if x_d == x_id else lambda_d / (c_d - 1)

The bandwidth follows a normal-reference rule (Scott's ``n ** (-1 / (d + 4))``) with the
Gini impurity ``1 - sum_k p_k**2`` (the probability that two points differ) as the spread,
clipped to ``[min_bandwidth, (c - 1) / c]``; at the upper end the kernel is uniform.
Everything is numpy: the cost of a proposal is ``O(candidates * n * d)``.

**Parallel proposals.** Brackets already let several workers ask at once, but every new
architecture of a first rung would come from the same ``l(x) / g(x)`` until results arrive,
and so cluster where ``l`` peaks. A pending architecture (proposed, not told) whose value at
the model's fidelity is unknown is therefore treated as a bad result: the constant liar
CL-min of Ginsbourger et al. (2010), a fantasy of the worst objective, which in a TPE means
one more point of the "bad" density ``g`` (the worst result ranks among the bad ones). ``g``
then rises around the pending architectures and ``l / g`` falls there, so the next proposal
goes elsewhere; ``l``, the good split and the draws are those of the told results alone.
With nothing pending the model is exactly the sequential one; ``fantasy="none"`` turns this
off.
"""

from __future__ import annotations

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Observation
from archsearch.strategy.hyperband import Hyperband
from archsearch.strategy.model_based import check_fantasy


class CategoricalKDE:
    """A product Aitchison-Aitken kernel density over choice indices (rows of ``codes``)."""

    def __init__(
        self, codes: np.ndarray, cardinalities: np.ndarray, min_bandwidth: float = 0.1
    ) -> None:
        self.codes = np.asarray(codes, dtype=np.int64)
        self.cardinalities = np.asarray(cardinalities, dtype=np.int64)
        n, d = self.codes.shape
        gini = np.empty(d)
        for j, c in enumerate(self.cardinalities):
            p = np.bincount(self.codes[:, j], minlength=c) / n
            gini[j] = 1.0 - np.sum(p**2)
        upper = (self.cardinalities - 1) / np.maximum(self.cardinalities, 1)
        self.bandwidth = np.clip(gini * n ** (-1.0 / (d + 4)), min_bandwidth, None)
        self.bandwidth = np.minimum(self.bandwidth, upper)

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """``log l(x)`` for each row of ``x`` (shape ``(m, d)``).

        ``log k(x, x_i) = sum_d log(lambda_d / (c_d - 1)) + sum_d [x_d == x_id] * delta_d``
        with ``delta_d = log(1 - lambda_d) - log(lambda_d / (c_d - 1))``: one ``(m, n)``
        comparison per decision, ``O(m * n * d)``.
        """
        lam = self.bandwidth
        log_other = np.log(np.maximum(lam / np.maximum(self.cardinalities - 1, 1), 1e-300))
        delta = np.log1p(-lam) - log_other
        per_point = np.full((len(x), len(self.codes)), log_other.sum())
        for j in range(self.codes.shape[1]):
            per_point += delta[j] * (x[:, j, None] == self.codes[None, :, j])
        top = per_point.max(axis=1, keepdims=True)
        return top[:, 0] + np.log(np.exp(per_point - top).mean(axis=1))

    def sample(self, rng: np.random.Generator, m: int, factor: float = 1.0) -> np.ndarray:
        """``m`` draws from the density with bandwidths multiplied by ``factor``."""
        upper = (self.cardinalities - 1) / np.maximum(self.cardinalities, 1)
        lam = np.minimum(self.bandwidth * factor, upper)
        centres = self.codes[rng.integers(len(self.codes), size=m)]
        move = rng.random(centres.shape) < lam
        # a moved coordinate takes one of the *other* choices uniformly (the kernel's tail)
        offsets = 1 + np.floor(rng.random(centres.shape) * np.maximum(self.cardinalities - 1, 1))
        moved = (centres + offsets.astype(np.int64)) % self.cardinalities
        return np.where(move & (self.cardinalities > 1), moved, centres)


@STRATEGIES.register("bohb")
class BOHB(Hyperband):
    """Hyperband with TPE-style model-based sampling; see the module docstring.

    Options (besides Hyperband's): ``random_fraction`` (1/3), ``top_quantile`` (0.15),
    ``candidates`` (64), ``bandwidth_factor`` (3) and ``min_bandwidth`` (0.1), the paper's
    values except ``min_bandwidth``: HpBandSter's 1e-3 lets a few good points collapse the
    model onto themselves, and on a deterministic table a repeat teaches nothing.

    With ``min_fidelity == max_fidelity`` there is one bracket of full evaluations and BOHB
    is model-based search with a TPE on its own.

    ``fantasy`` (``"worst"``): pending proposals join the bad density as constant-liar
    fantasies, so that parallel asks spread out (module docstring); ``"none"`` ignores them.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        min_fidelity: float = 1,
        max_fidelity: float = 27,
        eta: float = 3,
        random_fraction: float = 1 / 3,
        top_quantile: float = 0.15,
        candidates: int = 64,
        bandwidth_factor: float = 3.0,
        min_bandwidth: float = 0.1,
        fantasy: str = "worst",
    ) -> None:
        super().__init__(space, seed, min_fidelity, max_fidelity, eta)
        self.fantasy = check_fantasy(fantasy)
        if not 0 <= random_fraction <= 1:
            raise ArchsearchError(f"bohb needs 0 <= random_fraction <= 1, got {random_fraction!r}")
        if not 0 < top_quantile < 1:
            raise ArchsearchError(f"bohb needs 0 < top_quantile < 1, got {top_quantile!r}")
        if candidates < 1 or not bandwidth_factor > 0 or not 0 < min_bandwidth < 1:
            raise ArchsearchError(
                "bohb needs candidates >= 1, bandwidth_factor > 0 and 0 < min_bandwidth < 1, "
                f"got {candidates!r}, {bandwidth_factor!r}, {min_bandwidth!r}"
            )
        self.random_fraction = float(random_fraction)
        self.top_quantile = float(top_quantile)
        self.candidates = int(candidates)
        self.bandwidth_factor = float(bandwidth_factor)
        self.min_bandwidth = float(min_bandwidth)
        self._cards = np.array([len(d.choices) for d in space.decisions], dtype=np.int64)
        self.n_min = len(space.decisions) + 1
        # fidelity -> (choice indices, objective or None), in the order told
        self._data: dict[float, tuple[list[np.ndarray], list[float | None]]] = {}
        # fidelity -> the architectures told at it (membership only: never iterated)
        self._told_at: dict[float, set[Architecture]] = {}
        self._canonical = space.canonical if space.supports("canonical") else None
        self._fitted: tuple[int, tuple[CategoricalKDE, CategoricalKDE] | None] | None = None
        self._model_fidelity: float | None = None  # where model() last fitted

    def _observe(self, observation: Observation) -> None:
        fidelity = float(
            self.max_fidelity if observation.fidelity is None else observation.fidelity
        )
        codes, values = self._data.setdefault(fidelity, ([], []))
        codes.append(self._encode(observation.arch))
        values.append(observation.objective)
        self._told_at.setdefault(fidelity, set()).add(observation.arch)
        super()._observe(observation)

    def _encode(self, arch: Architecture) -> np.ndarray:
        return np.array([d.index(arch[d.label]) for d in self.space.decisions], dtype=np.int64)

    # ---------------------------------------------------------------- model
    def model(self) -> tuple[CategoricalKDE, CategoricalKDE] | None:
        """``(l, g)`` fit at the highest fidelity with enough observations, or None.

        Refit only when a result arrived since the last fit (parallel asks share a model).
        """
        if self._fitted is not None and self._fitted[0] == len(self.history):
            return self._fitted[1]
        enough = [f for f, (codes, _) in self._data.items() if len(codes) >= self.n_min + 2]
        fitted = None
        self._model_fidelity = max(enough) if enough else None
        if enough:
            codes, values = self._data[max(enough)]
            failed = np.array([v is None for v in values])
            scores = np.array([-np.inf if v is None else v for v in values])
            # best first, failures last, ties in the order told
            order = np.lexsort((np.arange(len(values)), -scores, failed))
            n_good = max(self.n_min, int(self.top_quantile * len(values)))
            n_bad = max(self.n_min, len(values) - n_good)
            stacked = np.stack(codes)
            fitted = (
                CategoricalKDE(stacked[order[:n_good]], self._cards, self.min_bandwidth),
                CategoricalKDE(stacked[order[n_good : n_good + n_bad]], self._cards,
                               self.min_bandwidth),
            )  # fmt: skip
        self._fitted = (len(self.history), fitted)
        return fitted

    def with_fantasies(self, bad: CategoricalKDE) -> CategoricalKDE:
        """``bad`` with a constant-liar fantasy for every pending architecture not told at
        the model's fidelity (module docstring); ``bad`` itself when there is none."""
        if self.fantasy == "none" or not self._pending:
            return bad
        known = self._told_at.get(self._model_fidelity, set())
        pending = [self._encode(arch) for arch in self.pending if arch not in known]
        if not pending:
            return bad
        codes = np.concatenate([bad.codes, np.stack(pending)])
        return CategoricalKDE(codes, self._cards, self.min_bandwidth)

    def _sample_new(self, fidelity: float) -> Architecture:
        if self.rng.random() < self.random_fraction:
            return self.sample_unseen()
        fitted = self.model()
        if fitted is None:
            return self.sample_unseen()
        good, bad = fitted[0], self.with_fantasies(fitted[1])
        rows = np.unique(good.sample(self.rng, self.candidates, self.bandwidth_factor), axis=0)
        arch = self._best_unseen(rows, good, bad)
        if arch is None and self.space.constrained:
            # sparse constrained spaces (tables) reject most draws; one-decision mutants of
            # good points are valid by construction, and the model still chooses among them
            mutants = {
                self.space.mutate(self._decode(row), self.rng)
                for row in good.codes[self.rng.integers(len(good.codes), size=self.candidates)]
            }
            rows = np.unique(np.stack([self._encode(a) for a in mutants]), axis=0)
            arch = self._best_unseen(rows, good, bad)
        if arch is None:
            return self.sample_unseen()
        self.seen.add(arch)
        return arch

    def _decode(self, row: np.ndarray) -> Architecture:
        arch = self.space._from_indices([int(i) for i in row])
        return arch if self._canonical is None else self._canonical(arch)

    def _best_unseen(
        self, rows: np.ndarray, good: CategoricalKDE, bad: CategoricalKDE
    ) -> Architecture | None:
        """The valid, unproposed candidate of highest ``l(x) / g(x)``, if any."""
        if self._canonical is not None:  # score the models the draws describe
            rows = np.unique(np.stack([self._encode(self._decode(r)) for r in rows]), axis=0)
        score = good.log_density(rows) - bad.log_density(rows)
        for k in np.argsort(-score, kind="stable"):
            arch = self._decode(rows[k])
            if arch in self.seen:
                continue
            if self.space.constrained and not self.space.is_valid(arch):
                continue
            return arch
        return None
