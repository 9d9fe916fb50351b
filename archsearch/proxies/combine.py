"""Combining proxies: their rank average, and a weighting fitted on a few evaluated networks.

No single proxy ranks well in every space (Krishnakumar et al., NeurIPS 2022), but their
errors differ, so combinations of their *ranks* are more robust than any one of them: ranks
put proxies on one scale whatever their units (synflow spans 1e40, NASWOT a few hundred).

* :func:`rank_average`: the mean normalised rank over chosen proxies (no fitting, no data).
* :func:`fit_proxy_weights`: in the spirit of UP-NAS (Huang et al. 2023) and RoBoT (He et al.,
  ICLR 2024), weights for the standardised proxy ranks fitted on the handful of candidates
  whose true accuracy is known, so that the weighted sum ranks *them* best.
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


#: the ways :func:`fit_proxy_weights` can fit
FIT_METHODS = ("spearman", "ridge", "nnls")


@dataclass(frozen=True)
class ProxyWeights:
    """A fitted linear combination of standardised proxy ranks."""

    names: tuple[str, ...]
    weights: np.ndarray
    #: Spearman's rho of the combination on the architectures it was fitted on
    fit_spearman: float
    method: str

    def combine(self, scores: Mapping[str, Sequence[float]]) -> np.ndarray:
        """The combined score of every architecture of ``scores``' population."""
        missing = [n for n in self.names if n not in scores]
        if missing:
            raise ArchsearchError(f"scores lack the fitted proxies {missing}")
        return standardised_ranks(scores, self.names) @ self.weights

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
    no fit does; ``benchmarks/proxies_fmnist.py``). ``method="spearman"`` (default) starts
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
