"""Training-free search: NASWOT search, TE-NAS pruning and proxy warm-start.

Networks are kept tiny (C=2..4, N=1, 8x8 inputs) so that the file runs in seconds; the
full-size comparison with the papers is benchmarks/training_free.py.
"""

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest

from archsearch.space import NB201Space
from archsearch.space.nb201 import EDGES, OPERATIONS, edge_label
from archsearch.strategy import make_strategy
from archsearch.strategy import training_free as tf
from archsearch.study import Study

TINY = {"data": "gaussian", "input_shape": [3, 8, 8]}


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


def test_the_strategies_import_torch_and_proxies_only_inside_functions():
    tree = ast.parse(Path(tf.__file__).read_text())
    top_level = [
        alias.name if isinstance(node, ast.Import) else node.module
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [m for m in top_level if m.startswith(("torch", "archsearch.proxies"))]


# ------------------------------------------------------------------ NASWOT
def test_naswot_search_picks_the_best_scoring_architecture_of_its_sample():
    space = tiny_space()
    strategy = make_strategy("naswot", space, seed=3, sample_size=6, **TINY)
    first = strategy.ask()
    sample = [arch for arch, _ in strategy.ranked]
    assert len(set(sample)) == 6
    # score the same sample independently: the first proposal is its argmax
    scores = tf.score_architectures(space, sample, "naswot", tf.ProxyData(**TINY), seed=3)
    assert first == sample[int(np.argmax(scores))] == strategy.choice
    assert np.all(np.diff([s for _, s in strategy.ranked]) <= 0)  # then in decreasing score
    later = [strategy.ask() for _ in range(5)]
    assert later == sample[1:]


def test_naswot_search_is_deterministic_per_seed():
    def choice(seed):
        return make_strategy("naswot", tiny_space(), seed=seed, sample_size=4, **TINY).ask()

    assert choice(1) == choice(1)


def test_a_batch_size_beyond_the_proxys_default_scores_every_row():
    space = tiny_space()
    arch = space.sample(np.random.default_rng(0))
    big = tf.ProxyData(batch_size=48, input_shape=(3, 8, 8))
    default = tf.ProxyData(input_shape=(3, 8, 8))
    # naswot's log-determinant grows with the batch: 48 rows score above the default 32
    assert (
        tf.score_architectures(space, [arch], "naswot", big)[0]
        > tf.score_architectures(space, [arch], "naswot", default)[0]
    )


# ------------------------------------------------------------------ warm start
@pytest.mark.slow
def test_warm_start_asks_the_proxys_top_k_first_then_delegates_and_tells_the_inner():
    space = tiny_space()
    strategy = make_strategy(
        "warmstart", space, seed=0, inner="evolution", proxy="params", sample_size=30,
        top_k=4, **TINY,
    )  # fmt: skip
    asked = [strategy.ask() for _ in range(4)]
    ranked = strategy.ranking()
    assert asked == [arch for arch, _ in ranked[:4]]
    params = [score for _, score in ranked]
    assert params[:4] == sorted(params, reverse=True)[:4]
    for arch in reversed(asked):  # tells in any order reach the inner strategy
        strategy.tell(arch, 1.0)
    assert len(strategy.inner.history) == 4 and len(strategy.inner.population) == 4
    more = [strategy.ask() for _ in range(6)]
    assert len(set(asked + more)) == 10  # the inner strategy never repeats the warm start


@pytest.mark.slow
def test_a_resumed_warm_start_study_replays_to_the_same_proposals(nb201_csv, tmp_path):
    config = {
        "space": {"name": "nb201", "channels": 2, "cells_per_stage": 1},
        "strategy": {"name": "warmstart", "inner": "evolution", "proxy": "params",
                     "sample_size": 20, "top_k": 3, **TINY},
        "evaluator": {"name": "nb201-table", "table": str(nb201_csv), "dataset": "cifar10"},
        "seed": 5,
        "budget": {"evaluations": 8, "seconds": None},
    }  # fmt: skip
    whole = Study.from_config(config)
    whole.optimize()
    half = Study.from_config(config, directory=tmp_path / "study")
    half.optimize(n_evaluations=4)
    half.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a replay that diverges from the stored trials warns
        resumed = Study.load(tmp_path / "study")
    resumed.optimize()
    assert [t.arch for t in resumed.trials] == [t.arch for t in whole.trials]


# ------------------------------------------------------------------ TE-NAS
def test_dense_ranks_share_ranks_on_ties_as_tenas_does():
    assert tf._dense_ranks([0.3, 0.1, 0.3, 0.2], descending=True) == [0, 2, 0, 1]
    assert tf._dense_ranks([0.3, 0.1, 0.3, 0.2], descending=False) == [2, 0, 2, 1]


@pytest.mark.slow
def test_tenas_prunes_one_operation_per_edge_per_round_down_to_one():
    space = NB201Space()
    result = tf.tenas_prune(
        space, seed=0, repeat=1, batch_size=4, region_samples=64, input_shape=[3, 8, 8]
    )
    assert space.make(dict(result.arch)) == result.arch
    # none goes first, then 4 -> 1 operations per edge: three rounds of six prunes
    assert len(result.rounds) == 3
    for pruned in result.rounds:
        assert sorted(label for label, _ in pruned) == sorted(edge_label(*e) for e in EDGES)
    for label in (edge_label(*e) for e in EDGES):
        removed = [op for pruned in result.rounds for lab, op in pruned if lab == label]
        assert sorted([*removed, result.arch[label]]) == sorted(OPERATIONS[1:])


def test_tenas_keeps_the_operation_whose_removal_hurts_both_measures_most(monkeypatch):
    """Algorithm 1 by hand: removing conv3x3 raises the condition number most and loses the
    most regions, removing skip lowers it most and loses none, so conv3x3 survives every
    edge and skip is pruned first."""
    effect = {"skip_connect": (0.5, -0.1), "avg_pool_3x3": (0.2, 0.0),
              "nor_conv_1x1": (0.0, 0.1), "nor_conv_3x3": (-0.5, 0.3)}  # fmt: skip

    def fake_measures(ntk_net, region_net, alive, candidates, *args):
        dk = {c: effect[OPERATIONS[c[1]]][0] for c in candidates}
        dr = {c: effect[OPERATIONS[c[1]]][1] for c in candidates}
        return dk, dr

    import archsearch.proxies.tenas_supernet as supernet

    monkeypatch.setattr(supernet, "prune_measures", fake_measures)
    result = tf.tenas_prune(NB201Space(), repeat=1, batch_size=2, input_shape=[3, 8, 8])
    assert set(result.arch.values()) == {"nor_conv_3x3"}
    assert {op for _, op in result.rounds[0]} == {"skip_connect"}


def test_the_tenas_strategy_proposes_the_pruned_architecture_first(monkeypatch):
    pruned = NB201Space().from_index(123)
    monkeypatch.setattr(tf, "tenas_prune", lambda space, **kw: tf.TENASResult(arch=pruned))
    strategy = make_strategy("tenas", NB201Space(), seed=0)
    asked = [strategy.ask() for _ in range(5)]
    assert asked[0] == pruned
    assert all(sum(a[k] != pruned[k] for k in pruned) == 1 for a in asked[1:])
