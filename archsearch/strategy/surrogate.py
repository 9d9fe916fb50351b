"""A fast Gaussian process on an architecture's decisions, for strategies that refit per ask.

The predictors of :mod:`archsearch.predict` import torch and train for a noticeable time;
a strategy that refits after every result and screens hundreds of candidates per proposal
needs a model that fits in milliseconds. This one is exact GP regression (Rasmussen &
Williams 2006, Algorithm 2.1), in numpy alone (importing scipy would cost a strategy more
than a search's worth of fits), with a kernel made for categorical decisions:

    k(a, b) = s2 * (w * overlap(a, b) + (1 - w) * exp(-theta * hamming(a, b)))

``overlap`` is the fraction of decisions on which ``a`` and ``b`` agree: a GP with that
kernel is a Bayesian model *additive* over decisions, which is what cost objectives are
(the parameters and FLOPs of a cell network are sums of per-operation costs, so this part
fits them almost exactly: Kendall's tau 0.96 on NAS-Bench-201 #params from 30 cells, the
rest being ties). ``exp(-theta * hamming)`` is the product over decisions of
``c + (1 - c) [a_d == b_d]`` (the categorical kernel of COMBO, Oh et al., NeurIPS 2019, and
of CoCaBO, Ru et al., ICML 2020): it captures interactions between decisions, of higher
order as ``theta`` grows, which accuracy has (a ``none`` edge cuts every path through it).

The hyperparameters ``w``, ``theta`` and the noise ``lam`` come from a small grid by maximum
(profiled) marginal likelihood, searched locally from the previous choice, and ``s2`` in
closed form; targets are standardised first. Everything is numpy and deterministic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from archsearch.space.base import Architecture, SearchSpace

#: the hyperparameter grids, ordered so that neighbours are one step apart
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 0.95)
THETAS = (0.1, 0.2, 0.4, 0.8, 1.6)
NOISES = (1e-4, 1e-3, 1e-2, 0.05, 0.2)


_BLAS: Any = None  # threadpoolctl's controller, made on first use


def single_threaded_blas() -> contextlib.AbstractContextManager:
    """A context in which BLAS runs on one thread (restored on exit).

    The matrices here have a few hundred rows; multi-threaded OpenBLAS spends more on
    waking and synchronising threads than it saves, and on a machine whose cores are busy
    (parallel seeds of a benchmark, other jobs) a proposal then cost ten times the CPU
    (measured: 13 ms against 160 ms per ask at 100 results). ``threadpoolctl`` comes with
    scikit-learn; without it the context does nothing.
    """
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a dependency of scikit-learn
            _BLAS = False
        else:
            _BLAS = ThreadpoolController()
    if _BLAS is False:
        return contextlib.nullcontext()
    return _BLAS.limit(limits=1, user_api="blas")


class DecisionCodec:
    """Architectures as integer codes (the index of each decision's choice) and one-hot rows.

    Strategies generate candidates as codes with numpy and build only the architectures
    they need; codes of told architectures are cached.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.decisions = space.decisions
        self.sizes = np.array([len(d.choices) for d in self.decisions], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.width = int(self.sizes.sum())
        self._position = [{c: i for i, c in enumerate(d.choices)} for d in self.decisions]
        self._cache: dict[Architecture, tuple[int, ...]] = {}

    def code(self, arch: Architecture) -> tuple[int, ...]:
        code = self._cache.get(arch)
        if code is None:
            code = tuple(
                position[arch[d.label]]
                for d, position in zip(self.decisions, self._position, strict=True)
            )
            self._cache[arch] = code
        return code

    def codes(self, archs: Sequence[Architecture]) -> np.ndarray:
        if not archs:
            return np.zeros((0, len(self.decisions)), dtype=np.int64)
        return np.array([self.code(a) for a in archs], dtype=np.int64)

    def arch(self, code: Sequence[int]) -> Architecture:
        """The assignment a code stands for (not checked against the space's constraints)."""
        return Architecture(
            (d.label, d.choices[int(i)]) for d, i in zip(self.decisions, code, strict=True)
        )

    def onehot(self, codes: np.ndarray) -> np.ndarray:
        out = np.zeros((len(codes), self.width))
        if len(codes):
            rows = np.repeat(np.arange(len(codes)), len(self.decisions))
            out[rows, (codes + self.offsets).ravel()] = 1.0
        return out


class Warp:
    """A monotone map of targets to normal scores and back (a Gaussian copula; Salinas,
    Shen & Perrone, ICML 2020, warp targets the same way for hyperparameter search).

    Accuracies are heavy-tailed (a cell whose edges are all ``none`` scores 10% where most
    score 80-90%); standardised, the few failures then dominate the GP's likelihood and the
    region that matters is squashed. Ranks mapped to normal quantiles spread the good end
    out. The inverse interpolates between the observed values and extrapolates linearly
    with the slope of each tail's last tenth, so that a draw better than anything seen
    maps to a value better than anything seen.
    """

    def __init__(self, y: np.ndarray) -> None:
        normal = NormalDist()
        quantiles = _ranks(y) / (len(y) + 1)
        self.scores = np.array([normal.inv_cdf(float(q)) for q in quantiles])
        self.values, first = np.unique(y, return_index=True)
        self.knots = self.scores[first]
        k = max(1, len(self.values) // 10)
        if len(self.values) > 1:
            self.low = (self.values[k] - self.values[0]) / (self.knots[k] - self.knots[0])
            self.high = (self.values[-1] - self.values[-1 - k]) / (
                self.knots[-1] - self.knots[-1 - k]
            )

    def inverse(self, z: np.ndarray) -> np.ndarray:
        if len(self.values) == 1:
            return np.full_like(z, self.values[0])
        y = np.interp(z, self.knots, self.values)
        y = np.where(z < self.knots[0], self.values[0] + self.low * (z - self.knots[0]), y)
        return np.where(z > self.knots[-1], self.values[-1] + self.high * (z - self.knots[-1]), y)


class CategoricalGP:
    """Exact GP regression with the additive-plus-interaction kernel of the module docstring.

    ``fit(x, y, select=True)`` picks hyperparameters (starting the grid search at the
    previous choice, so refits on a growing data set cost a few Cholesky factorisations)
    and whether to warp the targets (:class:`Warp`): both models are fitted and the one
    whose leave-one-out predictions rank the targets better (Spearman) is kept, so cost
    objectives stay exactly additive and heavy-tailed accuracies are warped.
    ``select=False`` keeps those choices and only refactorises.

    :meth:`sample` draws from the posterior marginals, mapped back through the warp.
    """

    def __init__(self, decisions: int, warp: bool | None = None) -> None:
        self.decisions = decisions
        self.choices = {False: (2, 2, 2), True: (2, 2, 2)}  # grid indices of w, theta, noise
        self.fixed_warp = warp
        self.warped = bool(warp)
        self.x: np.ndarray | None = None

    @property
    def hyperparameters(self) -> tuple[float, float, float]:
        w, t, n = self.choices[self.warped]
        return WEIGHTS[w], THETAS[t], NOISES[n]

    def _kernel(self, matches: np.ndarray, weight: float, theta: float) -> np.ndarray:
        d = self.decisions
        return weight * (matches / d) + (1.0 - weight) * np.exp(-theta * (d - matches))

    def _evidence(self, matches: np.ndarray, y: np.ndarray, choice: tuple[int, int, int]):
        weight, theta, noise = WEIGHTS[choice[0]], THETAS[choice[1]], NOISES[choice[2]]
        k = self._kernel(matches, weight, theta)
        k[np.diag_indices_from(k)] += noise
        try:
            chol = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            return -np.inf, None
        # numpy has no triangular solver; the inverse factor turns every later solve
        # (weights, predictive variances, leave-one-out residuals) into a product
        inverse = np.linalg.inv(chol)
        alpha = inverse.T @ (inverse @ y)
        scale = max(float(y @ alpha) / len(y), 1e-12)
        evidence = -0.5 * len(y) * np.log(scale) - np.log(np.diag(chol)).sum()
        return evidence, (inverse, alpha, scale)

    def _search(self, matches: np.ndarray, target: np.ndarray, choice, select: bool):
        """Local search on the grid from ``choice`` by marginal likelihood."""
        best, fitted = self._evidence(matches, target, choice)
        while select:
            improved = False
            for axis, grid in enumerate((WEIGHTS, THETAS, NOISES)):
                for step in (-1, 1):
                    index = choice[axis] + step
                    if not 0 <= index < len(grid):
                        continue
                    move = tuple(index if a == axis else c for a, c in enumerate(choice))
                    evidence, result = self._evidence(matches, target, move)
                    if evidence > best + 1e-9:
                        best, fitted, choice, improved = evidence, result, move, True
            if not improved:
                break
        if fitted is None:  # numerically singular everywhere: the largest noise
            choice = (choice[0], choice[1], len(NOISES) - 1)
            _, fitted = self._evidence(matches, target, choice)
        return choice, fitted

    def fit(self, x: np.ndarray, y: np.ndarray, select: bool = True) -> CategoricalGP:
        """Learn from one-hot rows ``x`` and targets ``y`` (at least two)."""
        y = np.asarray(y, dtype=float)
        matches = x @ x.T
        options = [self.warped] if not select or self.fixed_warp is not None else [False, True]
        if self.fixed_warp is not None:
            options = [self.fixed_warp]
        fits = {}
        for warped in options:
            warp = Warp(y) if warped else None
            target = warp.scores if warp else y
            mean = float(target.mean())
            std = float(target.std()) or 1.0
            standard = (target - mean) / std
            choice, fitted = self._search(matches, standard, self.choices[warped], select)
            self.choices[warped] = choice
            fits[warped] = (warp, mean, std, fitted)
        if len(fits) > 1:
            self.warped = max(fits, key=lambda w: _loo_spearman(y, *fits[w]))
        else:
            self.warped = options[0]
        self.x = x
        self._warp, self.mean, self.std, (self._inverse, self._alpha, self._scale) = fits[
            self.warped
        ]
        return self

    def conditioned(self, x: np.ndarray, y: np.ndarray) -> CategoricalGP:
        """A new GP with this one's hyperparameters and warp choice, fitted on ``x``, ``y``:
        one factorisation, no selection (what a fantasy fit for parallel proposals needs;
        this GP is left as it is)."""
        other = CategoricalGP(self.decisions, warp=self.fixed_warp)
        other.choices = dict(self.choices)
        other.warped = self.warped
        return other.fit(x, y, select=False)

    def _latent(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weight, theta, _ = self.hyperparameters
        cross = self._kernel(x @ self.x.T, weight, theta)
        mean = self.mean + self.std * (cross @ self._alpha)
        v = self._inverse @ cross.T
        variance = np.clip(1.0 - np.sum(v * v, axis=0), 1e-12, None) * self._scale
        return mean, self.std * np.sqrt(variance)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function at rows ``x``
        (in the warped scale when the targets are warped)."""
        return self._latent(x)

    def sample(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One independent posterior draw per row, on the targets' own scale."""
        mean, std = self._latent(x)
        draw = mean + std * rng.standard_normal(len(mean))
        return self._warp.inverse(draw) if self._warp is not None else draw


def _ranks(y: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank."""
    order = np.argsort(y, kind="stable")
    ranks = np.empty(len(y))
    ranks[order] = np.arange(1, len(y) + 1)
    values, inverse = np.unique(y, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks, minlength=len(values))
    counts = np.bincount(inverse, minlength=len(values))
    return (sums / counts)[inverse]


def _loo_spearman(y: np.ndarray, warp: Warp | None, mean: float, std: float, fitted) -> float:
    """Spearman correlation of the leave-one-out predictions (Rasmussen & Williams 2006,
    eq. 5.12, in closed form) with the targets, in the targets' own scale."""
    inverse, alpha, _ = fitted
    if len(y) < 3:
        return -np.inf
    diagonal = np.sum(inverse * inverse, axis=0)  # of K^-1 = inverse.T @ inverse
    standard = ((warp.scores if warp else y) - mean) / std
    loo = mean + std * (standard - alpha / diagonal)
    if warp is not None:
        loo = warp.inverse(loo)
    a, b = _ranks(loo), _ranks(y)
    a, b = a - a.mean(), b - b.mean()
    norm = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / norm) if norm > 0 else -np.inf
