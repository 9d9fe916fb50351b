"""Combining proxies: their rank average, and a weighting fitted on a few evaluated networks.

No single proxy ranks well in every space (Krishnakumar et al., NeurIPS 2022), but their
errors differ, so combinations of their *ranks* are more robust than any one of them: ranks
put proxies on one scale whatever their units (synflow spans 1e40, NASWOT a few hundred).

* :func:`rank_average`: the mean normalised rank over chosen proxies (no fitting, no data).
* :func:`reference_ranks`, :func:`reference_rank_average`, :func:`reference_standardised_ranks`:
  the same ranks taken within a fixed reference sample, so that one architecture can be
  ranked alone (the ``proxy`` evaluator's per-architecture combination).
* :func:`fit_proxy_weights`: in the spirit of UP-NAS (Huang et al. 2023) and RoBoT (He et al.,
  ICLR 2024), weights for the standardised proxy ranks fitted on the handful of candidates
  whose true accuracy is known, so that the weighted sum ranks *them* best.
* :func:`held_out_comparison`: whether fitting pays, judged honestly: fit on the validation
  accuracy of a few random architectures (what a search has evaluated), score every
  combination and every single proxy by Spearman's rho with test accuracy on the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from archsearch.errors import ArchsearchError


def normalised_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks scaled to (0, 1], highest score highest; ties share their mean rank.

    ``-inf`` (a network predicted worst) ranks lowest; ``nan`` (not scored) stays ``nan``.
    """
    v = np.asarray(values, dtype=float)
    out = np.full(v.shape, np.nan)
    ok = ~np.isnan(v)
    if ok.any():
        out[ok] = stats.rankdata(v[ok]) / ok.sum()
    return out


def rank_average(
    scores: Mapping[str, Sequence[float]], names: Sequence[str] | None = None
) -> np.ndarray:
    """Mean normalised rank over ``names`` (all proxies in ``scores`` when None).

    A network a proxy could not score (``nan``) is averaged over the other proxies.
    """
    names = list(scores) if names is None else list(names)
    if not names:
        raise ArchsearchError("rank_average needs at least one proxy")
    ranks = np.vstack([normalised_ranks(scores[n]) for n in names])
    out = np.full(ranks.shape[1], np.nan)
    some = np.isfinite(ranks).any(axis=0)
    out[some] = np.nanmean(ranks[:, some], axis=0)
    return out


def standardised_ranks(scores: Mapping[str, Sequence[float]], names: Sequence[str]) -> np.ndarray:
    """(n_architectures, n_proxies) ranks within the population, centred and scaled to unit
    variance per proxy; an unscored entry becomes 0 (the population mean)."""
    columns = []
    for n in names:
        r = normalised_ranks(scores[n])
        sd = np.nanstd(r)
        z = (r - np.nanmean(r)) / sd if sd > 0 else np.zeros_like(r)
        columns.append(np.nan_to_num(z, nan=0.0))
    return np.column_stack(columns)


def reference_ranks(values: Sequence[float], reference: Sequence[float]) -> np.ndarray:
    """Each value's normalised rank within ``reference``: the fraction of the reference's
    scores it beats, ties counted half, in [0, 1].

    Unlike :func:`normalised_ranks`, a value's rank depends only on the value and the fixed
    reference, not on which other architectures are scored with it, so that one architecture
    can be ranked alone (:class:`~archsearch.evaluate.proxy.ProxyEvaluator`'s reference
    sample). ``nan`` in ``values`` stays ``nan``; ``nan`` in ``reference`` (not scored) is
    left out; an empty reference ranks everything ``nan``.
    """
    v = np.asarray(values, dtype=float)
    ref = np.asarray(reference, dtype=float)
    ref = np.sort(ref[~np.isnan(ref)])
    out = np.full(v.shape, np.nan)
    ok = ~np.isnan(v)
    if ref.size and ok.any():
        below = np.searchsorted(ref, v[ok], side="left")
        tied = np.searchsorted(ref, v[ok], side="right") - below
        out[ok] = (below + 0.5 * tied) / ref.size
    return out


def reference_rank_average(
    scores: Mapping[str, Sequence[float]],
    reference: Mapping[str, Sequence[float]],
    names: Sequence[str],
) -> np.ndarray:
    """:func:`rank_average` with every proxy's rank taken within ``reference``
    (:func:`reference_ranks`) instead of within ``scores``' population."""
    if not names:
        raise ArchsearchError("rank_average needs at least one proxy")
    ranks = np.vstack([reference_ranks(scores[n], reference[n]) for n in names])
    out = np.full(ranks.shape[1], np.nan)
    some = np.isfinite(ranks).any(axis=0)
    out[some] = np.nanmean(ranks[:, some], axis=0)
    return out


def reference_standardised_ranks(
    scores: Mapping[str, Sequence[float]],
    reference: Mapping[str, Sequence[float]],
    names: Sequence[str],
) -> np.ndarray:
    """:func:`standardised_ranks` against ``reference``: each proxy's :func:`reference_ranks`,
    centred and scaled by the mean and standard deviation of the reference's own ranks
    within itself, so that the reference population is standardised as
    :func:`standardised_ranks` would standardise it; an unscored entry becomes 0."""
    columns = []
    for n in names:
        own = reference_ranks(reference[n], reference[n])
        r = reference_ranks(scores[n], reference[n])
        sd = float(np.nanstd(own)) if np.isfinite(own).any() else 0.0
        z = (r - np.nanmean(own)) / sd if sd > 0 else np.zeros_like(r)
        columns.append(np.nan_to_num(z, nan=0.0))
    return np.column_stack(columns)


#: the ways :func:`fit_proxy_weights` can fit
FIT_METHODS = ("spearman", "ridge", "nnls", "shrunk")


@dataclass(frozen=True)
class ProxyWeights:
    """A fitted linear combination of standardised proxy ranks."""

    names: tuple[str, ...]
    weights: np.ndarray
    #: Spearman's rho of the combination on the architectures it was fitted on
    fit_spearman: float
    method: str

    def combine(
        self,
        scores: Mapping[str, Sequence[float]],
        reference: Mapping[str, Sequence[float]] | None = None,
    ) -> np.ndarray:
        """The combined score of every architecture of ``scores``: its ranks are taken within
        ``scores``' population, or within ``reference`` when given
        (:func:`reference_standardised_ranks`), so that an architecture scores alone."""
        missing = [n for n in self.names if n not in scores]
        if missing:
            raise ArchsearchError(f"scores lack the fitted proxies {missing}")
        if reference is None:
            return standardised_ranks(scores, self.names) @ self.weights
        return reference_standardised_ranks(scores, reference, self.names) @ self.weights

    def as_dict(self) -> dict[str, float]:
        return {n: float(w) for n, w in zip(self.names, self.weights, strict=True)}


def fit_proxy_weights(
    scores: Mapping[str, Sequence[float]],
    truth: Sequence[float],
    names: Sequence[str] | None = None,
    *,
    method: str = "spearman",
) -> ProxyWeights:
    """Weights for the standardised ranks of ``names`` that rank the evaluated architectures
    best.

    ``scores`` covers a population (every candidate scored by the proxies); ``truth`` has the
    same length and holds the true accuracy where it is known and ``nan`` elsewhere, so that
    ranks are taken within the whole population but fitted only where truth exists.

    ``method="ridge"``: ridge regression of the standardised true ranks on the proxy ranks,
    its penalty chosen by leave-one-out (closed form). ``method="nnls"``: least squares with
    every weight >= 0. Every proxy is oriented higher-is-better, so a negative weight can
    only fit the noise of the evaluated few; the sign constraint is the regulariser (no
    penalty to choose) and keeps most weights at exactly zero. On our Fashion-MNIST table it
    is the fit that generalises best: with 100 evaluated architectures it beats every single
    proxy on held-out ones, where ridge and the Spearman search do not reliably (with 30,
    no fit does; ``benchmarks/proxies_fmnist.py``). ``method="shrunk"``: the rank average
    of all ``names`` as a prior, scaled by least squares (kept positive), plus a ridge
    correction whose penalty is chosen by leave-one-out error (:func:`_shrunk_weights`): a
    large penalty gives back the rank average, a small one the data's own weights, so it
    degrades to the rank average, not to noise, when the evaluated set is small.
    ``method="spearman"`` (default) starts
    from the ridge solution, equal weights and every single proxy, and maximises Spearman's
    rho of the weighted sum with Nelder-Mead on the unit sphere; since single proxies are
    among the starts, the fit never ranks the evaluated set worse than the best single proxy.
    With fewer evaluated architectures than proxies, in-sample rho overstates what the
    weights do on new candidates: diagnose them on held-out architectures.
    """
    names = list(scores) if names is None else list(names)
    if method not in FIT_METHODS:
        raise ArchsearchError(
            f"unknown fitting method {method!r}; methods: {', '.join(FIT_METHODS)}"
        )
    t = np.asarray(truth, dtype=float)
    known = np.isfinite(t)
    if known.sum() < 3:
        raise ArchsearchError(
            f"fitting needs at least 3 evaluated architectures, got {int(known.sum())}"
        )
    z = standardised_ranks(scores, names)[known]
    y = stats.rankdata(t[known])
    y = (y - y.mean()) / y.std()

    if method == "shrunk":
        weights = _shrunk_weights(standardised_ranks(scores, names), known, y)
        norm = np.linalg.norm(weights)
        weights = weights / norm if norm > 0 else weights
        value = stats.spearmanr(z @ weights, y).statistic if np.ptp(z @ weights) > 0 else -1.0
        return ProxyWeights(tuple(names), weights, float(np.nan_to_num(value, nan=-1.0)), method)

    if method == "nnls":
        weights, _ = optimize.nnls(z, y)
        if not weights.any():  # no proxy agrees with the truth: fall back to equal weights
            weights = np.ones(len(names))
        weights = weights / np.linalg.norm(weights)
        value = stats.spearmanr(z @ weights, y).statistic if np.ptp(z @ weights) > 0 else -1.0
        return ProxyWeights(tuple(names), weights, float(np.nan_to_num(value, nan=-1.0)), method)

    from sklearn.linear_model import RidgeCV

    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13), fit_intercept=False).fit(z, y).coef_
    candidates = [ridge, np.ones(len(names)), *np.eye(len(names))]

    def rho(w: np.ndarray) -> float:
        value = stats.spearmanr(z @ w, y).statistic if np.ptp(z @ w) > 0 else -1.0
        return float(value) if np.isfinite(value) else -1.0

    best = max(candidates, key=rho)
    if method == "spearman" and len(names) > 1:
        for start in sorted(candidates, key=rho, reverse=True)[:3]:
            res = optimize.minimize(
                lambda w: -rho(w / (np.linalg.norm(w) or 1.0)),
                start,
                method="Nelder-Mead",
                options={"maxiter": 200 * len(names), "xatol": 1e-3, "fatol": 1e-4},
            )
            if rho(res.x) > rho(best):
                best = res.x
    norm = np.linalg.norm(best)
    weights = best / norm if norm > 0 else best
    return ProxyWeights(tuple(names), weights, rho(weights), method)


def _shrunk_weights(z: np.ndarray, known: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights ``s * w_avg + d`` for the standardised ranks ``z`` of the whole population.

    With a few dozen evaluated architectures and a dozen proxies, an unconstrained weighting
    learns the noise of the few. Here the prior is the rank average of all proxies (``w_avg``
    = equal weights 1/k): ``s`` is the least-squares scale of the rank average on the
    evaluated architectures (kept positive) and ``d`` a ridge correction of the residual
    whose penalty is the one of 25 (1e-2..1e4) with the least leave-one-out error (closed
    form). ``y`` holds the standardised true ranks of the ``known`` rows.
    """
    k = z.shape[1]
    base = z.mean(axis=1)
    zk, bk = z[known], base[known]
    scale = max(float(bk @ y / (bk @ bk)), 1e-3) if bk @ bk > 0 else 1.0
    residual = y - scale * bk
    best = (np.inf, np.zeros(k))
    for penalty in np.logspace(-2, 4, 25):
        inverse = np.linalg.inv(zk.T @ zk + penalty * np.eye(k))
        hat = zk @ inverse @ zk.T
        loo = (residual - hat @ residual) / (1.0 - np.diag(hat))
        error = float(loo @ loo)
        if error < best[0]:
            best = (error, inverse @ zk.T @ residual)
    return scale / k + best[1]


def held_out_comparison(
    scores: Mapping[str, Sequence[float]],
    valid: Sequence[float],
    test: Sequence[float],
    names: Sequence[str],
    fit_size: int,
    splits: int,
    seed: int = 0,
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Spearman's rho with ``test`` on held-out architectures, per estimator and split.

    In-sample rho flatters a fit (a dozen weights on a few dozen points), so over ``splits``
    seeded random splits the weights are fitted on the *validation* accuracy of
    ``fit_size`` architectures (what a search would have evaluated) and every estimator is
    scored on the *other* architectures only: the fitted combinations (``shrunk``,
    ``spearman`` as "registry", ``nnls``), the rank average of ``names``, every single
    proxy in ``scores`` (#params and FLOPs too, if given), and "the single proxy that ranked
    the fitted architectures best", which is what a user without a fit would pick.

    Returns the per-split rhos per estimator and how often each proxy was that best single
    proxy.
    """
    from archsearch.diagnostics import spearman_rho
    from archsearch.proxies.report import orderable

    names = list(names)
    valid, test = np.asarray(valid, dtype=float), np.asarray(test, dtype=float)
    n = len(test)
    if not 3 <= fit_size < n - 1:
        raise ArchsearchError(f"fit_size must be in 3..{n - 2}, got {fit_size}")
    rng = np.random.default_rng(seed)
    ordered = {k: orderable(v) for k, v in scores.items()}
    results: dict[str, list[float]] = {}
    chosen: dict[str, int] = {}
    for _ in range(splits):
        fit = rng.choice(n, size=fit_size, replace=False)
        held = np.setdiff1d(np.arange(n), fit)
        truth = np.full(n, np.nan)
        truth[fit] = valid[fit]  # what a search has evaluated: validation accuracy
        estimates = {
            "fitted, shrunk to avg": fit_proxy_weights(
                scores, truth, names, method="shrunk"
            ).combine(scores),
            "fitted (registry)": fit_proxy_weights(scores, truth, names).combine(scores),
            "fitted, non-negative": fit_proxy_weights(scores, truth, names, method="nnls").combine(
                scores
            ),
            "rank average (all)": rank_average(scores, names),
            **ordered,
        }
        on_fit = {k: spearman_rho(ordered[k][fit], valid[fit]) for k in names}
        best = max(names, key=lambda k: on_fit[k] if np.isfinite(on_fit[k]) else -2)
        chosen[best] = chosen.get(best, 0) + 1
        estimates["best single on fit set"] = ordered[best]
        for name, values in estimates.items():
            results.setdefault(name, []).append(spearman_rho(values[held], test[held]))
    return results, chosen
