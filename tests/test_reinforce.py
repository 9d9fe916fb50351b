"""REINFORCE: the policy learns, keeps the strategy contract and beats random search."""

import numpy as np
import pytest
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.space import DefineByRunSpace, NB201Space, choice
from archsearch.strategy import make_strategy
from archsearch.study import Study


def score(arch):
    """Count of 3x3 convolutions plus a tie-breaker: the optimum is all nor_conv_3x3."""
    values = list(arch.values())
    return values.count("nor_conv_3x3") + 0.1 * values.count("skip_connect")


def study_config(strategy, seed, table, dataset="cifar10", budget=100):
    return {
        "space": {"name": "nb201"},
        "strategy": {"name": strategy},
        "evaluator": {"name": "nb201-table", "table": str(table), "dataset": dataset},
        "seed": seed,
        "budget": {"evaluations": budget, "seconds": None},
    }


def test_the_policy_concentrates_on_what_scores_well():
    strategy = make_strategy("reinforce", NB201Space(), seed=0)
    for _ in range(150):
        arch = strategy.ask()
        strategy.tell(arch, score(arch))
    conv3x3 = NB201Space().operations.index("nor_conv_3x3")
    assert all(p[conv3x3] > 0.5 for p in strategy.probabilities())
    assert strategy.best.objective >= 5


def test_the_update_is_scale_free():
    # the same search on accuracies in % and as fractions: the advantage is normalised,
    # so one learning rate serves every benchmark
    def run(scale):
        strategy = make_strategy("reinforce", NB201Space(), seed=1)
        proposals = []
        for _ in range(60):
            arch = strategy.ask()
            proposals.append(arch)
            strategy.tell(arch, scale * score(arch))
        return proposals

    assert run(1.0) == run(0.01)


def test_same_seed_gives_the_same_proposals():
    def run(seed):
        strategy = make_strategy("reinforce", NB201Space(), seed=seed)
        out = []
        for _ in range(40):
            arch = strategy.ask()
            out.append(arch)
            strategy.tell(arch, score(arch))
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_parallel_asks_are_distinct_and_tells_arrive_in_any_order():
    strategy = make_strategy("reinforce", NB201Space(), seed=0)
    for _ in range(5):
        batch = [strategy.ask() for _ in range(8)]
        assert len(set(batch)) == 8
        for arch in reversed(batch):
            strategy.tell(arch, score(arch))


def test_failures_teach_nothing_before_a_success_and_count_as_the_worst_after():
    strategy = make_strategy("reinforce", NB201Space(), seed=0)
    arch = strategy.ask()
    strategy.tell(arch, None)
    assert all((theta == 0).all() for theta in strategy.logits)
    for i in range(30):
        arch = strategy.ask()
        strategy.tell(arch, None if i % 3 == 0 else score(arch))
    assert strategy.best is not None and strategy.best.objective is not None
    assert strategy.baseline is not None and np.isfinite(strategy.baseline)


def test_results_it_did_not_propose_still_update_the_policy():
    space = NB201Space()
    strategy = make_strategy("reinforce", space, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(50):  # a warm start from random samples it never asked for
        arch = space.sample(rng)
        strategy.tell(arch, score(arch))
    conv3x3 = space.operations.index("nor_conv_3x3")
    assert np.mean([p[conv3x3] for p in strategy.probabilities()]) > 0.3  # uniform: 0.2


class Widths(nn.Module):
    """A define-by-run space: 1 to 3 layers, a width per layer (inactive when not built)."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        depth = choice("depth", [1, 2, 3])
        widths = [choice(f"layer{i}.width", [4, 8, 16, 32]) for i in range(depth)]
        self.head = nn.Linear(widths[-1], num_classes)


def test_define_by_run_spaces_get_canonical_valid_proposals():
    space = DefineByRunSpace(Widths, input_shape=(1, 4, 4), num_classes=2)
    strategy = make_strategy("reinforce", space, seed=0)

    def value(arch):  # best: three layers of width 32
        active = space.active(arch)
        return sum(arch[label] for label in active if label != "depth") / 96

    asked = []
    for _ in range(30):
        arch = strategy.ask()
        assert space.is_valid(arch)
        asked.append(arch)
        strategy.tell(arch, value(arch))
    assert len(set(asked)) == 30
    assert strategy.best.objective > 0.5


@pytest.mark.slow
def test_beats_random_search_on_nb201_over_several_seeds(nb201_csv):
    def mean_test_accuracy(strategy, dataset):
        finals = []
        for seed in range(20):
            study = Study.from_config(study_config(strategy, seed, nb201_csv, dataset, 100))
            study.optimize()
            finals.append(study.best.reported)
        return np.mean(finals)

    for dataset in ("cifar10", "cifar100"):
        assert (
            mean_test_accuracy("reinforce", dataset) > mean_test_accuracy("random", dataset) + 0.15
        )


def test_a_resumed_study_continues_exactly_where_it_stopped(nb201_csv, tmp_path):
    config = study_config("reinforce", 7, nb201_csv, budget=40)
    whole = Study.from_config(config)
    whole.optimize()
    part = Study.from_config(config, tmp_path / "study")
    part.optimize(15)
    part.close()
    resumed = Study.from_config(config, tmp_path / "study")
    resumed.optimize()
    assert [t.arch for t in resumed.trials] == [t.arch for t in whole.trials]


def test_options_round_trip_and_bad_options_name_the_value():
    strategy = make_strategy("reinforce", NB201Space(), lr=0.3, entropy=0.0, baseline_decay=0.5)
    assert make_strategy("reinforce", NB201Space(), **strategy.options()).options() == {
        "lr": 0.3,
        "entropy": 0.0,
        "baseline_decay": 0.5,
    }
    with pytest.raises(ArchsearchError, match="baseline_decay < 1, got 1.5"):
        make_strategy("reinforce", NB201Space(), baseline_decay=1.5)
    with pytest.raises(ArchsearchError, match="lr > 0, got -1"):
        make_strategy("reinforce", NB201Space(), lr=-1)
