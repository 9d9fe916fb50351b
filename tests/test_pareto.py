"""Pareto utilities against brute force: dominance by definition, volume by a grid count."""

import itertools

import numpy as np
import pytest

from archsearch.strategy.pareto import (
    crowding_distance,
    dominates,
    hypervolume,
    hypervolume_contributions,
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


@pytest.mark.parametrize("m", [1, 2, 3])
def test_improvement_of_many_candidates_matches_adding_each_alone(m):
    rng = np.random.default_rng(20 + m)
    front = rng.integers(0, 6, size=(8, m)).astype(float)
    candidates = rng.integers(-1, 7, size=(30, m)).astype(float)
    reference = np.full(m, 0.5)
    base = hypervolume(front, reference)
    expected = [hypervolume(np.vstack([front, c]), reference) - base for c in candidates]
    assert hypervolume_improvement(front, candidates, reference) == pytest.approx(expected)
    empty = np.zeros((0, m))
    alone = [hypervolume(c[None, :], reference) for c in candidates]
    assert hypervolume_improvement(empty, candidates, reference) == pytest.approx(alone)


def test_contributions_are_what_each_point_alone_adds():
    points = np.array([[3.0, 1.0], [2.0, 2.0], [1.0, 3.0], [1.0, 1.0], [5.0, -1.0]])
    contributions = hypervolume_contributions(points, [0, 0])
    assert contributions == pytest.approx([1.0, 1.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("m", [2, 3])
def test_contributions_match_removing_each_point(m):
    rng = np.random.default_rng(30 + m)
    points = rng.integers(0, 6, size=(25, m)).astype(float)  # ties and duplicates
    reference = np.full(m, 0.5)
    front = np.flatnonzero(pareto_mask(points))
    total = hypervolume(points[front], reference)
    expected = np.zeros(25)
    for i in front:
        expected[i] = total - hypervolume(points[front[front != i]], reference)
    assert hypervolume_contributions(points, reference) == pytest.approx(expected)


def test_contributions_of_one_objective_and_of_a_lone_point():
    assert hypervolume_contributions([[3.0], [1.0], [2.0]], [0.0]) == pytest.approx([3, 0, 0])
    assert hypervolume_contributions([[3.0], [3.0]], [0.0]) == pytest.approx([0, 0])
    lone = hypervolume_contributions([[2.0, 3.0, 4.0], [1.0, 1.0, 1.0]], [0.0, 0.0, 0.0])
    assert lone == pytest.approx([24.0, 0.0])
