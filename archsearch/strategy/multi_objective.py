"""What the multi-objective strategies share: constrained ranking, selection and crossover.

NSGA-II, multi-objective regularized evolution and the predictor-guided search all order
told results the same way, by *constrained domination* (Deb, Pratap, Agarwal & Meyarivan,
"A fast and elitist multiobjective genetic algorithm: NSGA-II", IEEE TEC 2002, sec. VI):

* a feasible result beats every infeasible one;
* among feasible results (and, separately, among infeasible ones) Pareto domination of the
  oriented objective vectors decides, so the ranks are those of a non-dominated sort;
* a failed evaluation (no values) is never ranked at all: it is never a parent;
* stricter than Deb's tournament, an infeasible result is never a parent while a feasible
  one is known (:func:`breeding_pool`).

Deb ranks infeasible solutions by how much they violate the constraints; a study only
tells whether a result is feasible, so infeasible ones are sorted by their objectives
instead, after all feasible fronts. That keeps a search that has found nothing feasible yet
moving, and makes any feasible find win at once.

Everything here is a pure function of observations (plus ``rng`` where it draws), so the
strategies built on it stay deterministic and resumable by replay.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from archsearch.errors import InvalidArchitectureError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import Observation, Strategy
from archsearch.strategy.pareto import (
    crowding_distance,
    hypervolume_contributions,
    non_dominated_sort,
    pareto_mask,
)


def constrained_ranks(observations: Sequence[Observation]) -> np.ndarray:
    """The constrained-domination front of every observation (0 = best), see the module
    docstring. Every observation must have values (failed ones are never ranked)."""
    n = len(observations)
    ranks = np.zeros(n, dtype=int)
    feasible = np.array([o.feasible for o in observations], dtype=bool)
    offset = 0
    for group in (np.flatnonzero(feasible), np.flatnonzero(~feasible)):
        if group.size == 0:
            continue
        points = np.array([observations[i].values for i in group], dtype=float)
        fronts = non_dominated_sort(points)
        for rank, front in enumerate(fronts):
            ranks[group[front]] = offset + rank
        offset += len(fronts)
    return ranks


def crowding(observations: Sequence[Observation], ranks: np.ndarray) -> np.ndarray:
    """Deb's crowding distance of every observation within its own front."""
    distance = np.zeros(len(observations))
    for rank in np.unique(ranks):
        front = np.flatnonzero(ranks == rank)
        points = np.array([observations[i].values for i in front], dtype=float)
        distance[front] = crowding_distance(points)
    return distance


def contributions(observations: Sequence[Observation], ranks: np.ndarray) -> np.ndarray:
    """Every observation's exclusive hypervolume contribution within its own front, against
    a reference point a tenth of the value range beyond the worst value of each objective
    (the usual choice when no reference is given; Beume, Naujoks & Emmerich, EJOR 2007)."""
    points = np.array([o.values for o in observations], dtype=float)
    span = points.max(axis=0) - points.min(axis=0)
    reference = points.min(axis=0) - 0.1 * np.where(span > 0, span, 1.0)
    out = np.zeros(len(observations))
    for rank in np.unique(ranks):
        front = np.flatnonzero(ranks == rank)
        out[front] = hypervolume_contributions(points[front], reference)
    return out


def leading(observations: Sequence[Observation], count: int) -> list[int]:
    """The indices of the ``count`` best observations by constrained domination: whole
    fronts in order (feasible ones first), the last front cut by hypervolume contribution
    (as SMS-EMOA truncates, Beume et al. 2007). Fronts are peeled only as far as needed,
    so picking a few parents among a thousand results stays cheap."""
    if not observations:
        return []
    points = np.array([o.values for o in observations], dtype=float)
    span = points.max(axis=0) - points.min(axis=0)
    reference = points.min(axis=0) - 0.1 * np.where(span > 0, span, 1.0)
    feasible = np.array([o.feasible for o in observations], dtype=bool)
    chosen: list[int] = []
    for remaining in (np.flatnonzero(feasible), np.flatnonzero(~feasible)):
        while remaining.size and len(chosen) < count:
            mask = pareto_mask(points[remaining])
            front = remaining[mask]
            if len(chosen) + len(front) > count:
                gain = hypervolume_contributions(points[front], reference)
                front = front[np.argsort(-gain, kind="stable")[: count - len(chosen)]]
            chosen.extend(int(i) for i in front)
            remaining = remaining[~mask]
    return chosen


def environmental_selection(observations: Sequence[Observation], size: int) -> list[int]:
    """NSGA-II's survivors (Deb et al. 2002, sec. III-C): whole fronts in rank order, the
    last one that does not fit truncated by crowding distance. Crowding is recomputed after
    each removal from that front (the steady-state variant's one-at-a-time truncation,
    which keeps the front spread better than one cut)."""
    keep = list(range(len(observations)))
    while len(keep) > size:
        members = [observations[i] for i in keep]
        ranks = constrained_ranks(members)
        worst = np.flatnonzero(ranks == ranks.max())
        points = np.array([members[i].values for i in worst], dtype=float)
        distance = crowding_distance(points)
        # the most crowded member of the worst front leaves; among equals the newest one,
        # so that an early result is not displaced by a later duplicate of its values
        victim = worst[np.lexsort((-worst, distance))[0]]
        del keep[int(victim)]
    return keep


def breeding_pool(observations: Sequence[Observation]) -> list[int]:
    """Who may be a parent: the feasible results when there is one, else every result.

    Deb's tournament lets two infeasible members meet and one of them win; here an
    infeasible result is never a parent once a feasible one is known (its children would
    mostly break the constraint too, and every evaluation counts in NAS). Before that, the
    infeasible results' objectives still steer the search.
    """
    feasible = [i for i, o in enumerate(observations) if o.feasible]
    return feasible or list(range(len(observations)))


def crowded_winner(candidates: Sequence[int], ranks: np.ndarray, distance: np.ndarray) -> int:
    """The candidate NSGA-II's crowded-comparison operator prefers (rank, then crowding;
    the first listed among exact ties)."""
    return min(candidates, key=lambda i: (ranks[i], -distance[i]))


def uniform_crossover(
    space: SearchSpace, first: Architecture, second: Architecture, rng: np.random.Generator
) -> Architecture | None:
    """Each decision from either parent with probability 1/2 (Syswerda 1989), or None when
    the child is not a member of the space.

    The child is built through the space: :meth:`SearchSpace.make` checks choices and
    constraints, and a space with a canonical form (define-by-run models) maps the mixture
    to the model it describes first. A constrained space may reject the mixture (a table
    without that row); the caller then mutates a parent instead.
    """
    take_first = rng.random(len(space.decisions)) < 0.5
    assignment = {
        d.label: first[d.label] if pick else second[d.label]
        for d, pick in zip(space.decisions, take_first, strict=True)
    }
    try:
        if space.supports("canonical"):
            return space.canonical(assignment)
        return space.make(assignment)
    except InvalidArchitectureError:
        return None


class MultiObjectiveStrategy(Strategy):
    """Base of the strategies that weigh any number of objectives by constrained domination.

    With one objective the ranks are simply the order of the values, so each of them is
    then an ordinary single-objective search (evolution, a genetic algorithm, BO).
    """

    max_objectives = None

    def propose_child(self, parent: Architecture) -> Architecture:
        """``parent`` itself if it was never proposed, else a never-proposed mutant of it
        (a fresh sample when none is found), recorded as seen."""
        if parent not in self.seen:
            self.seen.add(parent)
            return parent
        return self.mutate_unseen(parent)
