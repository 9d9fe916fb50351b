"""How well an estimator ranks architectures: one set of metrics for proxies, predictors and
supernets alike.

Search only needs an estimator to *order* candidates well, and mostly at the top, so the
diagnostics are rank correlations over all architectures and within the true top fraction,
precision at the top, and where the estimator's favourites really rank. Scores are "higher
is better" on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def _arrays(estimate: Sequence[float], truth: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(estimate, dtype=float)
    t = np.asarray(truth, dtype=float)
    if e.shape != t.shape or e.ndim != 1:
        raise ValueError(
            f"estimate and truth must be 1-d of equal length, got {e.shape}, {t.shape}"
        )
    keep = np.isfinite(e) & np.isfinite(t)
    return e[keep], t[keep]


def kendall_tau(estimate: Sequence[float], truth: Sequence[float]) -> float:
    e, t = _arrays(estimate, truth)
    return float(stats.kendalltau(e, t).statistic) if len(e) > 1 else float("nan")


def spearman_rho(estimate: Sequence[float], truth: Sequence[float]) -> float:
    e, t = _arrays(estimate, truth)
    return float(stats.spearmanr(e, t).statistic) if len(e) > 1 else float("nan")


def _top(values: np.ndarray, fraction: float) -> np.ndarray:
    k = max(1, int(round(fraction * len(values))))
    return np.argsort(-values, kind="stable")[:k]


def precision_at_top(estimate: Sequence[float], truth: Sequence[float], fraction: float) -> float:
    """Share of the estimator's top ``fraction`` that is also in the true top ``fraction``."""
    e, t = _arrays(estimate, truth)
    a, b = _top(e, fraction), _top(t, fraction)
    return len(np.intersect1d(a, b)) / len(a)


def within_top(estimate: Sequence[float], truth: Sequence[float], fraction: float) -> dict:
    """Kendall and Spearman restricted to the true top ``fraction`` (the part search uses)."""
    e, t = _arrays(estimate, truth)
    idx = _top(t, fraction)
    return {"kendall": kendall_tau(e[idx], t[idx]), "spearman": spearman_rho(e[idx], t[idx])}


def true_ranks_of_top(estimate: Sequence[float], truth: Sequence[float], k: int) -> tuple[int, int]:
    """Best and worst true rank (1 = best) among the estimator's top ``k``."""
    e, t = _arrays(estimate, truth)
    true_rank = np.empty(len(t), dtype=int)
    true_rank[np.argsort(-t, kind="stable")] = np.arange(1, len(t) + 1)
    picked = true_rank[np.argsort(-e, kind="stable")[:k]]
    return int(picked.min()), int(picked.max())


def ranking_report(
    estimate: Sequence[float], truth: Sequence[float], top_k: int = 10
) -> dict[str, float]:
    """Every ranking diagnostic in one flat dict (for tables and CSV)."""
    best, worst = true_ranks_of_top(estimate, truth, top_k)
    top5, top10 = within_top(estimate, truth, 0.05), within_top(estimate, truth, 0.10)
    return {
        "kendall": kendall_tau(estimate, truth),
        "spearman": spearman_rho(estimate, truth),
        "kendall_top5": top5["kendall"],
        "spearman_top5": top5["spearman"],
        "kendall_top10": top10["kendall"],
        "spearman_top10": top10["spearman"],
        "precision_top5": precision_at_top(estimate, truth, 0.05),
        "precision_top10": precision_at_top(estimate, truth, 0.10),
        f"best_true_rank_top{top_k}": best,
        f"worst_true_rank_top{top_k}": worst,
    }


def noise_ceiling(kendall_between_runs: float, runs_averaged: int = 1) -> float:
    """The Kendall's tau a perfect estimator could reach against a noisy ground truth.

    A table trained once per architecture repeats itself only so well: two runs with
    different seeds agree at ``kendall_between_runs``. Modelling each run as the
    architecture's noise-free accuracy plus independent Gaussian noise, the runs correlate
    at ``rho = sin(pi * tau / 2)`` (Greiner's relation), the mean of ``runs_averaged`` runs
    correlates with the noise-free accuracy at ``sqrt(R)`` with ``R = n rho / (1 + (n-1)
    rho)`` (Spearman-Brown), and the tau of that correlation is ``(2 / pi) asin(sqrt(R))``:
    no estimator of the noise-free accuracy, however good, is expected to rank the table
    better.
    """
    if runs_averaged < 1:
        raise ValueError(f"runs_averaged must be >= 1, got {runs_averaged}")
    if not -1 <= kendall_between_runs <= 1:  # NaN fails too
        raise ValueError(f"a Kendall's tau lies in [-1, 1], got {kendall_between_runs}")
    rho = max(0.0, float(np.sin(np.pi * kendall_between_runs / 2)))
    reliability = runs_averaged * rho / (1 + (runs_averaged - 1) * rho)
    return float(2 / np.pi * np.arcsin(np.sqrt(reliability)))
