"""Model-based strategies, BANANAS and predictor-guided evolution: the ask/tell contract,
any space, and that their models make them better than random search on NAS-Bench-201."""

import numpy as np
import pytest

from archsearch.errors import ArchsearchError
from archsearch.space import Decision, NB201Space, SearchSpace
from archsearch.strategy import STRATEGIES, make_strategy
from archsearch.study import Study

MODEL_BASED = ["bananas", "predictor-evolution"]


class GridSpace(SearchSpace):
    """A small hand-made space without a cell graph: 4 x 4 x 3 x 2 = 96 architectures."""

    name = "grid"

    def __init__(self):
        super().__init__([
            Decision("width", (8, 16, 32, 64)),
            Decision("depth", (1, 2, 3, 4)),
            Decision("kernel", (3, 5, 7)),
            Decision("norm", ("batch", "layer")),
        ])  # fmt: skip


def grid_score(arch):
    """Peaked at width 32, depth 3, kernel 5, batch norm; the optimum scores 10."""
    return (
        10.0
        - abs(arch["width"] - 32) / 8
        - abs(arch["depth"] - 3)
        - abs(arch["kernel"] - 5) / 2
        - (arch["norm"] != "batch")
    )


def nb201_score(arch):
    values = list(arch.values())
    return values.count("nor_conv_3x3") + 0.1 * values.count("skip_connect")


def test_both_are_registered_and_bad_options_are_refused():
    assert set(MODEL_BASED) <= set(STRATEGIES.names())
    with pytest.raises(ArchsearchError, match="unknown acquisition 'ei'.*'its', 'ucb'"):
        make_strategy("bananas", NB201Space(), acquisition="ei")
    with pytest.raises(ArchsearchError, match="sample_size <= population_size"):
        make_strategy("predictor-evolution", NB201Space(), population_size=3, sample_size=5)


@pytest.mark.parametrize("name", MODEL_BASED)
@pytest.mark.slow
def test_parallel_asks_are_distinct_tells_come_in_any_order_and_failures_are_not_best(name):
    strategy = make_strategy(name, NB201Space(), seed=0)
    proposed = []
    for round_ in range(4):
        batch = [strategy.ask() for _ in range(6)]  # six workers ask before anyone tells
        assert len(set(batch)) == len(batch)
        proposed += batch
        for i, arch in enumerate(reversed(batch)):
            strategy.tell(arch, None if (round_ + i) % 4 == 0 else nb201_score(arch))
    assert len(set(proposed)) == len(proposed)
    assert strategy.best is not None and strategy.best.objective is not None


@pytest.mark.parametrize("name", MODEL_BASED)
@pytest.mark.slow
def test_same_seed_same_proposals_and_a_foreign_tell_is_accepted(name):
    def run(seed):
        space = NB201Space()
        strategy = make_strategy(name, space, seed=seed)
        strategy.tell(space.sample(np.random.default_rng(99)), 1.0)  # a warm start
        out = []
        for _ in range(16):
            arch = strategy.ask()
            out.append(arch)
            strategy.tell(arch, nb201_score(arch))
        return out

    assert run(1) == run(1)
    assert run(1) != run(2)


@pytest.mark.parametrize("name", MODEL_BASED)
@pytest.mark.slow
def test_runs_on_a_space_without_a_cell_graph_and_finds_its_optimum(name):
    strategy = make_strategy(name, GridSpace(), seed=0)
    for _ in range(40):
        arch = strategy.ask()
        strategy.tell(arch, grid_score(arch))
    assert strategy.best.objective == 10.0


@pytest.mark.slow
def test_ucb_acquisition_runs_too():
    strategy = make_strategy("bananas", NB201Space(), seed=0, acquisition="ucb")
    for _ in range(14):
        arch = strategy.ask()
        strategy.tell(arch, nb201_score(arch))
    assert strategy.best.objective >= 3


@pytest.mark.slow
def test_both_beat_random_search_on_nas_bench_201_cifar10(nb201_csv):
    """Mean test accuracy of the best-by-validation architecture over 5 seeds, 50 queries.

    Random search reaches about 93.5 here; a model that silently stopped guiding the search
    would fall back to about that.
    """

    def mean_test_accuracy(strategy):
        finals = []
        for seed in range(5):
            config = {
                "space": {"name": "nb201"},
                "strategy": {"name": strategy},
                "evaluator": {"name": "nb201-table", "table": str(nb201_csv), "dataset": "cifar10"},
                "seed": seed,
                "budget": {"evaluations": 50, "seconds": None},
            }
            study = Study.from_config(config)
            study.optimize()
            finals.append(study.best.reported)
        return np.mean(finals)

    random = mean_test_accuracy("random")
    for name in MODEL_BASED:
        assert mean_test_accuracy(name) > random + 0.2, name


@pytest.mark.filterwarnings("error:.*replayed proposals differ")
@pytest.mark.parametrize("name", MODEL_BASED)
@pytest.mark.slow
def test_a_resumed_study_makes_the_proposals_of_an_uninterrupted_one(name, nb201_csv, tmp_path):
    config = {
        "space": {"name": "nb201"},
        "strategy": {"name": name},
        "evaluator": {"name": "nb201-table", "table": str(nb201_csv), "dataset": "cifar10"},
        "seed": 3,
        "budget": {"evaluations": 16, "seconds": None},
    }
    interrupted = Study.from_config(config, directory=tmp_path)
    interrupted.optimize(n_evaluations=13)  # past the random start: the model is in play
    interrupted.close()
    resumed = Study.load(tmp_path)  # replays asks and tells; a divergence fails here
    resumed.optimize()
    uninterrupted = Study.from_config(config)
    uninterrupted.optimize()
    assert [t.arch for t in resumed.trials] == [t.arch for t in uninterrupted.trials]
