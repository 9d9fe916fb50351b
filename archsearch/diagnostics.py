"""How well an estimator ranks architectures: one set of metrics for proxies, predictors and
supernets alike.

Search only needs an estimator to *order* candidates well, and mostly at the top, so the
diagnostics are rank correlations over all architectures and within the true top fraction,
precision at the top, and where the estimator's favourites really rank. Scores are "higher
is better" on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

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


def rank_in_table(values: Sequence[float], value: float) -> dict[str, float]:
    """Where ``value`` falls among a table's ``values`` (higher is better): the rows strictly
    better, and the top share it reaches (``(better + 1) / rows``, in percent).

    A searched architecture's accuracy means little alone; its place among all the table's
    architectures says how good the search was, and works for a retrained architecture the
    table does not hold.
    """
    v = np.asarray(values, dtype=float)
    better = int((v > value).sum())
    return {"rows_better": better, "top_percent": round(100.0 * (better + 1) / len(v), 2)}


def kendall_shared(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[float, int]:
    """Kendall's tau of two estimators (or tables) keyed by architecture, over the keys both
    hold, and how many they share: tables of different sizes compare on their overlap."""
    shared = sorted(set(a) & set(b))
    return kendall_tau([a[s] for s in shared], [b[s] for s in shared]), len(shared)


def replicate_mean(
    columns: Mapping[str, Mapping[str, float]], names: Sequence[str]
) -> dict[str, float]:
    """The mean of replicate runs (tables with the same recipe, other seeds) over the
    architectures they all hold: a less noisy ground truth than any one run."""
    shared = set.intersection(*(set(columns[n]) for n in names))
    return {a: float(np.mean([columns[n][a] for n in names])) for a in shared}


def replicate_agreement(
    columns: Mapping[str, Mapping[str, float]], names: Sequence[str]
) -> dict[str, float]:
    """How far replicate runs agree, and what that allows any estimator to reach.

    ``kendall_between_runs`` is the mean Kendall's tau over the pairs of ``names`` (each pair
    on the architectures it shares); ``ceiling_one_run`` and ``ceiling_mean`` are
    :func:`noise_ceiling` against one run and against the mean of all ``names``; ``cells``
    counts the architectures all of them hold.
    """
    names = list(names)
    if len(set(names)) < 2:
        raise ValueError(f"replicate agreement needs two or more runs, got {names}")
    between = [kendall_shared(columns[a], columns[b])[0] for a, b in combinations(names, 2)]
    tau = float(np.mean(between))
    return {
        "kendall_between_runs": tau,
        "ceiling_one_run": noise_ceiling(tau),
        "ceiling_mean": noise_ceiling(tau, len(names)),
        "cells": len(replicate_mean(columns, names)),
    }


def seed_noise(first: Sequence[float], second: Sequence[float]) -> dict[str, float]:
    """The noise of a ground truth measured twice (the same rows, another training seed).

    Kendall's tau between the runs bounds what any estimator can reach against one run;
    ``kendall_ceiling_noise_free`` is the tau an estimator of each row's noise-free accuracy
    would reach (:func:`noise_ceiling`); the differences give the noise in accuracy points,
    beside the spread of the first run.
    """
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(f"two runs of the same two or more rows needed, got {a.shape}, {b.shape}")
    difference = b - a
    between = kendall_tau(a, b)
    return {
        "rows": len(a),
        "kendall_between_seeds": round(between, 3),
        "kendall_ceiling_noise_free": round(noise_ceiling(between), 3),
        "abs_difference_mean": round(float(np.abs(difference).mean()), 3),
        "difference_std": round(float(difference.std(ddof=1)), 3),
        "table_valid_std": round(float(a.std(ddof=1)), 3),
    }
