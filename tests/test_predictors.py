"""Performance predictors: the common contract, the losses, GATES' invariance, and learning."""

import numpy as np
import pytest
import torch

from archsearch.diagnostics import kendall_tau
from archsearch.errors import ArchsearchError, UnknownComponentError
from archsearch.predict import PREDICTORS, GATESPredictor, make_predictor
from archsearch.predict.training import pairwise_hinge
from archsearch.space import Decision, NB201Space, SearchSpace
from archsearch.tables import load_nb201_table

# small training budgets: these tests check behaviour, the benchmark checks quality
FAST = {
    "mlp-ensemble": {"epochs": 20, "min_steps": 20},
    "gp": {},
    "lightgbm": {"trees": 50},
    "gates": {"epochs": 20, "min_steps": 20, "width": 16},
}


class TinySpace(SearchSpace):
    """A hand-made space without a cell graph."""

    name = "tiny"

    def __init__(self):
        super().__init__([Decision("width", (16, 32, 64)), Decision("depth", (1, 2, 3, 4))])


def tiny_score(arch):
    return arch["width"] / 16 + arch["depth"]


def nb201_score(arch):
    values = list(arch.values())
    return values.count("nor_conv_3x3") + 0.5 * values.count("nor_conv_1x1")


def sample(space, n, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_the_registry_holds_the_four_predictors_and_refuses_unknown_names():
    assert {"mlp-ensemble", "gp", "lightgbm", "gates"} <= set(PREDICTORS.names())
    with pytest.raises(UnknownComponentError, match="unknown predictor 'svm'.*gates"):
        make_predictor("svm", NB201Space())


@pytest.mark.parametrize("name", sorted(FAST))
@pytest.mark.parametrize("space", [NB201Space(), TinySpace()], ids=["nb201", "no-graph"])
def test_every_predictor_fits_and_predicts_on_every_space_deterministically(name, space):
    score = nb201_score if isinstance(space, NB201Space) else tiny_score
    train, test = sample(space, 30, seed=1), sample(space, 10, seed=2)

    def run():
        predictor = make_predictor(name, space, seed=3, **FAST[name])
        predictor.fit(train, [score(a) for a in train])
        return predictor, predictor.predict(test)

    predictor, first = run()
    assert first.shape == (10,) and np.isfinite(first).all()
    assert np.array_equal(first, run()[1])
    if predictor.has_std:
        mean, std = predictor.predict(test, return_std=True)
        assert np.array_equal(mean, first) and (std >= 0).all()
    else:
        with pytest.raises(ArchsearchError, match="no standard deviation.*mlp-ensemble"):
            predictor.predict(test, return_std=True)


def test_fitting_leaves_global_random_state_and_thread_count_alone():
    space = NB201Space()
    archs = sample(space, 20)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    threads = torch.get_num_threads()
    for name in ("mlp-ensemble", "gates"):
        make_predictor(name, space, **FAST[name]).fit(archs, [nb201_score(a) for a in archs])
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert torch.get_num_threads() == threads


def test_bad_inputs_are_refused_with_the_reason():
    space = NB201Space()
    archs = sample(space, 3)
    with pytest.raises(ArchsearchError, match="does not train with loss 'ranking'.*'mse'"):
        make_predictor("lightgbm", space, loss="ranking")
    with pytest.raises(ArchsearchError, match="score nan at position 1"):
        make_predictor("gp", space).fit(archs, [1.0, float("nan"), 2.0])
    with pytest.raises(ArchsearchError, match="one score per architecture"):
        make_predictor("gp", space).fit(archs, [1.0, 2.0])
    with pytest.raises(ArchsearchError, match="must be fitted"):
        make_predictor("gates", space).predict(archs)


def test_pairwise_hinge_counts_only_pairs_ordered_by_the_truth():
    target = torch.tensor([3.0, 2.0, 1.0])
    assert pairwise_hinge(torch.tensor([1.0, 0.5, 0.0]), target) == 0  # margins of >= 0.1
    reversed_loss = pairwise_hinge(torch.tensor([0.0, 0.5, 1.0]), target)
    assert reversed_loss == pytest.approx((0.6 + 1.1 + 0.6) / 3)
    assert pairwise_hinge(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])) == 0  # a tie


def test_gates_embeds_cells_that_differ_only_in_dead_branches_identically():
    space = NB201Space()
    predictor = GATESPredictor(space, seed=0, **FAST["gates"])
    archs = sample(space, 20)
    predictor.fit(archs, [nb201_score(a) for a in archs])
    # node 1 feeds only 'none' edges, so edge 1<-0 is dead whatever it holds
    dead = "|{}~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    variants = [space.from_string(dead.format(op)) for op in space.operations]
    # and a cell with every edge into the output cut computes nothing, like the all-none one
    cut = space.from_string(
        "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|none~1|none~2|"
    )
    empty = space.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    live = space.from_string(dead.format("nor_conv_3x3").replace("none~1|+", "skip_connect~1|+"))
    embedding = predictor.embed([*variants, cut, empty, live])
    for row in embedding[1 : len(variants)]:
        np.testing.assert_allclose(row, embedding[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(embedding[len(variants)], embedding[len(variants) + 1], atol=1e-6)
    assert not np.allclose(embedding[-1], embedding[0], atol=1e-4)  # a live change counts
    scores = predictor.predict([*variants, cut, empty])
    assert np.ptp(scores[: len(variants)]) < 1e-5


@pytest.mark.parametrize(
    "name, least",
    [("gates", 0.55), ("mlp-ensemble", 0.45), ("gp", 0.3), ("lightgbm", 0.4)],
)
@pytest.mark.slow
def test_predictors_learn_to_rank_nas_bench_201_from_200_cells(name, least, nb201_csv):
    table = load_nb201_table(nb201_csv)
    space, truth = table.space, table.column("cifar10_valid")
    order = np.random.default_rng(0).permutation(len(truth))
    train, test = order[:200], order[200:2200]
    archs = [space.from_index(int(i)) for i in order[:2200]]
    options = {"gates": {"epochs": 60, "min_steps": 150, "width": 32}}.get(name, {})
    predictor = make_predictor(name, space, seed=0, **options)
    predictor.fit(archs[:200], truth[train])
    assert kendall_tau(predictor.predict(archs[200:]), truth[test]) > least
