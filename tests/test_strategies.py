"""Strategy contract tests, run against every registered black-box strategy."""

import numpy as np
import pytest

from archsearch.space import NB201Space
from archsearch.strategy import STRATEGIES, make_strategy
from archsearch.study import Study

CORE = ["random", "evolution", "local"]


def score(arch):
    """A deterministic synthetic objective: count of 3x3 convolutions, plus a tie-breaker."""
    values = list(arch.values())
    return values.count("nor_conv_3x3") + 0.1 * values.count("skip_connect")


@pytest.mark.parametrize("name", CORE)
def test_same_seed_gives_the_same_proposals(name):
    def run(seed):
        strategy = make_strategy(name, NB201Space(), seed=seed)
        proposals = []
        for _ in range(40):
            arch = strategy.ask()
            proposals.append(arch)
            strategy.tell(arch, score(arch))
        return proposals

    assert run(3) == run(3)
    assert run(3) != run(4)


@pytest.mark.parametrize("name", CORE)
def test_several_asks_before_any_tell_and_tells_in_any_order(name):
    strategy = make_strategy(name, NB201Space(), seed=0)
    for _ in range(5):
        batch = [strategy.ask() for _ in range(8)]
        assert len(set(batch)) == len(batch)
        for arch in reversed(batch):
            strategy.tell(arch, score(arch))


@pytest.mark.parametrize("name", CORE)
def test_failed_evaluations_are_told_as_none_and_never_chosen_as_best(name):
    strategy = make_strategy(name, NB201Space(), seed=0)
    for i in range(30):
        arch = strategy.ask()
        strategy.tell(arch, None if i % 3 == 0 else score(arch))
    assert strategy.best is not None and strategy.best.objective is not None


def test_regularized_evolution_mutates_the_tournament_winner_and_ages_out_the_oldest():
    space = NB201Space()
    strategy = make_strategy("evolution", space, seed=0, population_size=5, sample_size=5)
    told = []
    for _ in range(5):
        arch = strategy.ask()
        strategy.tell(arch, score(arch))
        told.append(arch)
    best = max(told, key=score)
    child = strategy.ask()  # sample_size = population: the parent is the population's best
    assert sum(child[k] != best[k] for k in best) == 1
    strategy.tell(child, -1.0)
    assert told[0] not in [o.arch for o in strategy.population]


def test_local_search_climbs_to_the_optimum_of_a_unimodal_objective():
    strategy = make_strategy("local", NB201Space(), seed=0, initial=1)
    for _ in range(200):
        arch = strategy.ask()
        strategy.tell(arch, score(arch))
    assert strategy.best.objective == 6  # all six edges nor_conv_3x3


@pytest.mark.parametrize("name", ["evolution", "local"])
def test_beats_random_search_on_nb201_cifar10(name, nb201_csv):
    def mean_test_accuracy(strategy):
        finals = []
        for seed in range(20):
            config = {
                "space": {"name": "nb201"},
                "strategy": {"name": strategy},
                "evaluator": {"name": "nb201-table", "table": str(nb201_csv), "dataset": "cifar10"},
                "seed": seed,
                "budget": {"evaluations": 100, "seconds": None},
            }
            study = Study.from_config(config)
            study.optimize()
            finals.append(study.best.reported)
        return np.mean(finals)

    assert mean_test_accuracy(name) > mean_test_accuracy("random") + 0.1


#: strategies that learn from scores alone; training-free ones score networks at
#: initialisation and are tested, at their own cost, in test_training_free.py
BLACK_BOX = ["random", "evolution", "local", "reinforce", "bananas", "predictor-evolution",
             "hyperband", "bohb"]  # fmt: skip


@pytest.mark.slow
def test_every_black_box_strategy_runs_through_a_study(nb201_csv):
    for name in [n for n in BLACK_BOX if n in STRATEGIES]:
        config = {
            "space": {"name": "nb201"},
            "strategy": {"name": name},
            "evaluator": {"name": "nb201-table", "table": str(nb201_csv), "dataset": "cifar100"},
            "seed": 0,
            "budget": {"evaluations": 12, "seconds": None},
        }
        study = Study.from_config(config)
        study.optimize()
        assert study.n_finished == 12, name
