"""Pareto utilities against brute force: dominance by definition, volume by a grid count."""

import itertools

import numpy as np
import pytest

from archsearch.strategy.pareto import (
    crowding_distance,
    dominates,
    hypervolume,
    hypervolume_improvement,
    non_dominated_sort,
    pareto_mask,
    pareto_ranks,
)


def brute_front(points):
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p) for j, q in enumerate(points) if j != i)
    ]


@pytest.mark.parametrize("m", [2, 3])
def test_front_and_sort_match_the_definition(m):
    rng = np.random.default_rng(m)
    points = rng.integers(0, 6, size=(40, m)).astype(float)  # many ties and duplicates
    assert list(np.flatnonzero(pareto_mask(points))) == brute_front(points)
    fronts = non_dominated_sort(points)
    assert sorted(np.concatenate(fronts)) == list(range(40))
    remaining = list(range(40))
    for front in fronts:
        sub = points[remaining]
        expected = [remaining[i] for i in brute_front(sub)]
        assert sorted(front) == expected
        remaining = [i for i in remaining if i not in set(front)]
    ranks = pareto_ranks(points)
    for r, front in enumerate(fronts):
        assert set(np.flatnonzero(ranks == r)) == set(front)


def test_two_objective_hypervolume_by_hand():
    points = [[3, 1], [2, 2], [1, 3]]
    assert hypervolume(points, [0, 0]) == pytest.approx(3 + 2 + 1)  # staircase of 6 cells
    assert hypervolume(points + [[1, 1]], [0, 0]) == pytest.approx(6)  # dominated: nothing
    assert hypervolume([[5, -1]], [0, 0]) == 0.0  # does not dominate the reference
    assert hypervolume(np.zeros((0, 2)), [0, 0]) == 0.0


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_equals_a_grid_count(m):
    rng = np.random.default_rng(10 + m)
    points = rng.integers(1, 5, size=(7, m)).astype(float)
    cells = 0
    for corner in itertools.product(range(5), repeat=m):  # unit cells [c, c+1)^m
        upper = np.asarray(corner) + 1
        cells += bool(np.any(np.all(points >= upper, axis=1)))
    assert hypervolume(points, np.zeros(m)) == pytest.approx(cells)


def test_improvement_is_the_volume_a_candidate_adds():
    front = np.array([[3.0, 1.0], [1.0, 3.0]])
    gains = hypervolume_improvement(front, [[2.0, 2.0], [0.5, 0.5], [4.0, 4.0]], [0, 0])
    assert gains == pytest.approx([1.0, 0.0, 16.0 - 5.0])


def test_crowding_keeps_extremes_and_prefers_isolated_points():
    points = np.array([[0.0, 10.0], [1.0, 9.0], [1.1, 8.9], [5.0, 5.0], [10.0, 0.0]])
    distance = crowding_distance(points)
    assert np.isinf(distance[[0, 4]]).all()
    assert distance[3] > distance[2]
