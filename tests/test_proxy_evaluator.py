"""The ``proxy`` evaluator's combination of proxies, one architecture at a time.

A combination's value is each proxy's rank within a seeded reference sample (the fraction
of reference scores it beats, ties half), averaged or weighted; these tests check it against
that formula, against the proxies' own order, and through a study and a config round trip.
Networks are tiny (C=2, N=1, 8x8 inputs) so that the file runs in seconds.
"""

import numpy as np
import pytest

from archsearch.components import build_evaluator
from archsearch.errors import ArchsearchError
from archsearch.evaluate.proxy import ProxyEvaluator, reference_sample
from archsearch.proxies.combine import (
    ProxyWeights,
    reference_ranks,
    reference_standardised_ranks,
    standardised_ranks,
)
from archsearch.space import NB201Space
from archsearch.space.nb201 import EDGES, edge_label
from archsearch.study import Study
from archsearch.study.screening import distinct_sample

TINY = {"data": "gaussian", "input_shape": [3, 8, 8]}
TINY_SPACE = {"name": "nb201", "channels": 2, "cells_per_stage": 1}
PAIR = ["params", "flops"]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks run fastest on one thread; on a busy machine, threads only contend."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_space() -> NB201Space:
    return NB201Space(channels=2, cells_per_stage=1)


def cell(space: NB201Space, operation: str):
    """The cell with ``operation`` on every edge."""
    ops = {edge_label(to, src): operation for to, src in EDGES}
    text = "+".join(
        "|" + "|".join(f"{ops[edge_label(j, i)]}~{i}" for i in range(j)) + "|" for j in (1, 2, 3)
    )
    return space.from_string(text)


def test_reference_ranks_count_the_reference_beaten_ties_half():
    ranks = reference_ranks([0.0, 1.0, 2.5, 9.0, np.nan], [1.0, 2.0, 3.0, 1.0, np.nan])
    assert ranks[:4].tolist() == [0.0, 0.25, 0.75, 1.0]
    assert np.isnan(ranks[4])
    # within itself, the reference standardises as the in-sample standardisation does
    ref = {"a": [3.0, 1.0, 2.0, 2.0], "b": [0.5, 0.1, 0.7, 0.9]}
    assert np.allclose(
        reference_standardised_ranks(ref, ref, ["a", "b"]), standardised_ranks(ref, ["a", "b"])
    )


def test_one_architecture_of_a_combination_is_ranked_within_the_reference_sample():
    space = tiny_space()
    evaluator = ProxyEvaluator(PAIR, reference_size=12, reference_seed=3, **TINY)
    arch = distinct_sample(space, 0, 1)[0]
    first = evaluator.evaluate(arch, space, seed=1)
    assert evaluator.reference_seconds is not None and evaluator.reference_seconds > 0
    assert first.values["reference_seconds"] == evaluator.reference_seconds
    again = evaluator.evaluate(arch, space, seed=1)
    assert "reference_seconds" not in again.values  # the reference is scored once
    assert again.values["combined"] == first.values["combined"]

    # the formula: the mean over proxies of the fraction of reference scores beaten
    sample = reference_sample(space, 12, 3)
    assert len(set(sample)) == 12 and sample == reference_sample(space, 12, 3)
    reference = evaluator.reference_scores(space)
    assert all(len(reference[n]) == 12 for n in PAIR)
    expected = np.mean([
        np.mean((reference[n] < first.values[n]) + 0.5 * (reference[n] == first.values[n]))
        for n in PAIR
    ])  # fmt: skip
    assert first.values["combined"] == pytest.approx(expected)
    # ... and the reference path of evaluate_many gives the same, whatever else is scored
    others = distinct_sample(space, 7, 4)
    many = evaluator.evaluate_many([*others, arch], space, seed=1, ranks="reference")
    assert many[-1].values["combined"] == pytest.approx(first.values["combined"])


def test_the_combination_orders_a_large_cell_above_a_small_one():
    space = tiny_space()
    evaluator = ProxyEvaluator(PAIR, reference_size=12, **TINY)
    large = evaluator.evaluate(cell(space, "nor_conv_3x3"), space).values
    small = evaluator.evaluate(cell(space, "skip_connect"), space).values
    assert large["params"] > small["params"] and large["flops"] > small["flops"]
    assert large["combined"] > small["combined"]


def test_weights_on_one_proxy_order_as_that_proxy():
    space = tiny_space()
    archs = distinct_sample(space, 2, 8)
    weighted = ProxyEvaluator(PAIR, weights={"params": 1, "flops": 0}, reference_size=12, **TINY)
    results = [weighted.evaluate(a, space) for a in archs]
    combined = np.array([r.values["combined"] for r in results])
    params = np.array([r.values["params"] for r in results])
    # the weighted value is a non-decreasing function of params: pairwise orders agree
    for i in range(len(archs)):
        for j in range(len(archs)):
            if params[i] > params[j]:
                assert combined[i] >= combined[j]
            if combined[i] > combined[j]:
                assert params[i] > params[j]
    # and it is the standardised reference rank of params, the transformation of combine.py
    reference = weighted.reference_scores(space)
    fitted = ProxyWeights(tuple(PAIR), np.array([1.0, 0.0]), float("nan"), "given")
    scores = {n: np.array([r.values[n] for r in results]) for n in PAIR}
    assert np.allclose(combined, fitted.combine(scores, reference))


def test_screening_ranks_a_combination_within_its_sample_as_before():
    space = tiny_space()
    archs = distinct_sample(space, 0, 6)
    evaluator = ProxyEvaluator(PAIR, reference_size=12, **TINY)
    results = evaluator.evaluate_many(archs, space, seed=0)
    assert evaluator.reference_seconds is None  # in-sample ranks need no reference
    ranks = [r.values["combined"] for r in results]
    assert min(ranks) > 0 and max(ranks) <= 1
    with pytest.raises(ArchsearchError, match="ranks"):
        evaluator.evaluate_many(archs, space, ranks="population")


def test_a_study_searches_with_a_combination(nb201_csv):
    config = {
        "space": TINY_SPACE,
        "strategy": {"name": "random"},
        "evaluator": {"name": "proxy", "proxy": PAIR, "reference_size": 12, **TINY},
        "seed": 5,
        "budget": {"evaluations": 3, "seconds": None},
    }
    study = Study.from_config(config)
    study.optimize()
    assert study.n_finished == 3 and study.declaration.primary.name == "combined"
    values = [t.values["combined"] for t in study.trials]
    assert all(0 <= v <= 1 for v in values)


def test_the_combination_round_trips_through_its_config():
    evaluator = ProxyEvaluator(
        "params,flops", weights={"params": 0.7, "flops": 0.3}, reference_size=12,
        reference_seed=4, **TINY,
    )  # fmt: skip
    config = evaluator.config()
    assert config["reference_size"] == 12 and config["reference_seed"] == 4
    rebuilt = build_evaluator(config)
    assert rebuilt.config() == config
    space = tiny_space()
    arch = distinct_sample(space, 1, 1)[0]
    assert (
        rebuilt.evaluate(arch, space).values["combined"]
        == evaluator.evaluate(arch, space).values["combined"]
    )
    with pytest.raises(ArchsearchError, match="reference_size"):
        ProxyEvaluator(PAIR, reference_size=1)
