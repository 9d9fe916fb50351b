"""Pareto dominance, non-dominated sorting, crowding and hypervolume, for maximisation.

Every function takes points as rows of an ``(n, m)`` array of *oriented* objective vectors
(the strategy convention: every component "higher is better"), so a study's ``min``
objectives arrive negated and nothing here needs to know directions. The study, the
multi-objective strategies and the benchmarks all measure fronts with these functions, so a
hypervolume printed by ``archsearch show`` and one in ``benchmarks/mo_search.py`` agree.

Sizes in NAS are small (hundreds to a few thousand results, two or three objectives), so
the algorithms are the plain exact ones: O(m n^2) non-dominated sorting (Deb et al. 2002),
an O(n log n) sweep for two-objective hypervolume, and slicing along the last objective
for more (exact, exponential only in the number of objectives).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """``points`` as a float array of shape ``(n, m)`` (an empty input gives ``(0, 0)``)."""
    array = np.asarray(points, dtype=float)
    if array.size == 0:
        return array.reshape(0, array.shape[1] if array.ndim == 2 else 0)
    if array.ndim != 2:
        raise ValueError(f"points must be an (n, m) array, got shape {array.shape}")
    return array


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and better somewhere."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a >= b) and np.any(a > b))


def _dominance(points: np.ndarray) -> np.ndarray:
    """``d[i, j]``: point i dominates point j."""
    ge = np.all(points[:, None, :] >= points[None, :, :], axis=2)
    gt = np.any(points[:, None, :] > points[None, :, :], axis=2)
    return ge & gt


def pareto_mask(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows (duplicates of a front point all stay)."""
    points = as_points(points)
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    if points.shape[1] == 2:
        return _pareto_mask_2d(points)
    return ~_dominance(points).any(axis=0)


def _pareto_mask_2d(points: np.ndarray) -> np.ndarray:
    """The non-dominated rows of two objectives in O(n log n) (Kung, Luccio & Preparata,
    JACM 1975): sorted by the first objective, a point survives when it has the largest
    second value of its first-objective level and beats every level above it."""
    order = np.lexsort((-points[:, 1], -points[:, 0]))
    x, y = points[order, 0], points[order, 1]
    starts = np.flatnonzero(np.append(True, x[1:] != x[:-1]))
    group = np.cumsum(np.append(True, x[1:] != x[:-1])) - 1
    level_best = y[starts]  # the largest second value of each level (sorted descending)
    above = np.append(-np.inf, np.maximum.accumulate(level_best)[:-1])
    keep = (y == level_best[group]) & (y > above[group])
    mask = np.zeros(len(points), dtype=bool)
    mask[order[keep]] = True
    return mask


def non_dominated_sort(points: Sequence[Sequence[float]] | np.ndarray) -> list[np.ndarray]:
    """Indices of the successive fronts: the first is non-dominated, the second is
    non-dominated once the first is removed, and so on (Deb et al. 2002, fast sort)."""
    points = as_points(points)
    if len(points) == 0:
        return []
    dominated_by = _dominance(points)  # [i, j]: i dominates j
    counts = dominated_by.sum(axis=0)  # how many points dominate j
    fronts, current = [], np.flatnonzero(counts == 0)
    while current.size:
        fronts.append(current)
        counts = counts - dominated_by[current].sum(axis=0)
        counts[current] = -1  # placed
        current = np.flatnonzero(counts == 0)
    return fronts


def pareto_ranks(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The front number of every row (0 = non-dominated)."""
    points = as_points(points)
    ranks = np.zeros(len(points), dtype=int)
    for rank, front in enumerate(non_dominated_sort(points)):
        ranks[front] = rank
    return ranks


def crowding_distance(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Deb et al.'s crowding distance within one front: the normalised perimeter of the box
    its neighbours span, infinite at each objective's extremes (so they are kept first)."""
    points = as_points(points)
    n = len(points)
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(points.shape[1]):
        order = np.argsort(points[:, k], kind="stable")
        column = points[order, k]
        span = column[-1] - column[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]
) -> float:
    """The volume dominated by ``points`` and dominating ``reference`` (maximisation).

    Points that do not strictly dominate the reference point contribute nothing.
    """
    points = as_points(points)
    reference = np.asarray(reference, dtype=float)
    if len(points) == 0:
        return 0.0
    if points.shape[1] != reference.shape[0]:
        raise ValueError(f"points have {points.shape[1]} objectives, reference {len(reference)}")
    points = points[np.all(points > reference, axis=1)]
    if len(points) == 0:
        return 0.0
    points = points[pareto_mask(points)]
    return float(_volume(points - reference))


def _volume(points: np.ndarray) -> float:
    """Hypervolume of positive points against the origin."""
    m = points.shape[1]
    if m == 1:
        return float(points[:, 0].max())
    if m == 2:
        order = np.argsort(-points[:, 0], kind="stable")
        xs, ys = points[order, 0], points[order, 1]
        best_y = np.maximum.accumulate(ys)
        widths = xs - np.append(xs[1:], 0.0)
        return float(np.sum(widths * best_y))
    # slice along the last objective: between consecutive levels, the points reaching at
    # least that level dominate an (m-1)-dimensional region of constant shape
    levels = np.unique(points[:, -1])[::-1]
    total, lower = 0.0, np.append(levels[1:], 0.0)
    for level, below in zip(levels, lower, strict=True):
        slab = points[points[:, -1] >= level, :-1]
        total += (level - below) * _volume(slab[pareto_mask(slab)])
    return total


def hypervolume_improvement(
    front: Sequence[Sequence[float]] | np.ndarray,
    candidates: Sequence[Sequence[float]] | np.ndarray,
    reference: Sequence[float],
) -> np.ndarray:
    """How much each candidate alone would add to the hypervolume of ``front``."""
    front, candidates = as_points(front), as_points(candidates)
    reference = np.asarray(reference, dtype=float)
    if candidates.shape[1:] == (2,) or candidates.shape[1:] == (1,):
        return _improvement_low_dimensional(front, candidates, reference)
    base = hypervolume(front, reference) if len(front) else 0.0
    out = np.empty(len(candidates))
    for i, candidate in enumerate(candidates):
        stacked = candidate[None, :] if len(front) == 0 else np.vstack([front, candidate])
        out[i] = hypervolume(stacked, reference) - base
    return out


def _improvement_low_dimensional(
    front: np.ndarray, candidates: np.ndarray, reference: np.ndarray
) -> np.ndarray:
    """Hypervolume improvement of many candidates at once, for one or two objectives.

    A candidate ``c`` adds its box ``[r, c]`` less the part of it the front already
    dominates, and that part is the hypervolume of the front clipped to ``c``
    (``min(f, c)`` for every front point ``f``): with the front sorted by the first
    objective the clipped points still form a staircase, so one cumulative sum per
    candidate measures it. Vectorised because acquisition functions score hundreds of
    candidates per proposal.
    """
    boxes = np.clip(candidates - reference, 0.0, None)
    shifted = front - reference if len(front) else np.zeros((0, boxes.shape[1]))
    shifted = shifted[np.all(shifted > 0, axis=1)]
    if boxes.shape[1] == 1:
        best = shifted[:, 0].max() if len(shifted) else 0.0
        return np.clip(boxes[:, 0] - best, 0.0, None)
    if len(shifted) == 0:
        return boxes[:, 0] * boxes[:, 1]
    shifted = shifted[pareto_mask(shifted)]
    shifted = shifted[np.lexsort((-shifted[:, 1], shifted[:, 0]))]  # x up, y down
    x = np.minimum(shifted[None, :, 0], boxes[:, 0, None])
    y = np.minimum(shifted[None, :, 1], boxes[:, 1, None])
    widths = np.diff(x, axis=1, prepend=0.0)
    covered = np.sum(widths * y, axis=1)
    return np.clip(boxes[:, 0] * boxes[:, 1] - covered, 0.0, None)


def hypervolume_contributions(
    points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]
) -> np.ndarray:
    """The volume each non-dominated point alone dominates (Emmerich, Beume & Naujoks, EMO
    2005): what the hypervolume of the non-dominated points loses without it. Dominated
    points and points that do not dominate the reference contribute 0; of exact
    duplicates, neither alone contributes."""
    points = as_points(points)
    reference = np.asarray(reference, dtype=float)
    out = np.zeros(len(points))
    candidates = np.flatnonzero(pareto_mask(points) & np.all(points > reference, axis=1))
    if len(candidates) == 1:  # alone on its front: its whole box
        out[candidates] = np.prod(points[candidates[0]] - reference)
        return out
    if points.shape[1] == 1:  # tied best values: none holds anything alone
        return out
    if points.shape[1] == 2 and len(candidates):
        # a 2-d front sorted by the first objective is a staircase: each point alone holds
        # the rectangle between its neighbours
        order = candidates[np.lexsort((-points[candidates, 1], points[candidates, 0]))]
        x, y = points[order, 0], points[order, 1]
        left = np.append(reference[0], x[:-1])
        below = np.append(y[1:], reference[1])
        out[order] = (x - left) * (y - below)
        return out
    front = points[candidates]
    total = hypervolume(front, reference)
    for k, i in enumerate(candidates):
        out[i] = total - hypervolume(np.delete(front, k, axis=0), reference)
    return out
