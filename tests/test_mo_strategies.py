"""Multi-objective strategies (nsga2, mo-evolution, mo-predictor): they find better fronts
than random search, breed from the first results, keep infeasible results out of
breeding, and keep the ask/tell contract (determinism, replay, parallel asks, one
objective)."""

import numpy as np
import pytest

from archsearch.space import NB201Space
from archsearch.space.base import Decision, SearchSpace
from archsearch.space.nb201 import OPERATIONS
from archsearch.strategy import make_strategy
from archsearch.strategy.multi_objective import breeding_pool, constrained_ranks, leading
from archsearch.strategy.pareto import dominates, hypervolume

MULTI = ["nsga2", "mo-evolution", "mo-predictor"]


@pytest.fixture(scope="module")
def accuracy_vs_latency():
    """NAS-Bench-Graph on Cora: validation accuracy (max) against latency (min), oriented,
    with the benchmark's normalisation (each objective from its median, 0, to its best, 1;
    reference point at the median)."""
    pytest.importorskip("nas_bench_graph")
    from archsearch.tables.nasbench_graph import load_nasbench_graph

    table = load_nasbench_graph("cora")
    every = np.stack([table.valid, -table.latency], axis=1)
    median, best = np.median(every, axis=0), every.max(axis=0)

    def values(arch):
        return tuple(float(v) for v in every[table.row(arch)])

    def normalised_hypervolume(points):
        return hypervolume((np.asarray(points) - median) / (best - median), [0.0, 0.0])

    return table.space, values, normalised_hypervolume


def search(name, space, values, budget, seed, **options):
    strategy = make_strategy(name, space, seed=seed, **options)
    told = []
    for _ in range(budget):
        arch = strategy.ask()
        told.append(values(arch))
        strategy.tell(arch, told[-1])
    return told


@pytest.mark.parametrize(
    "name", ["nsga2", "mo-evolution", pytest.param("mo-predictor", marks=pytest.mark.slow)]
)
def test_front_hypervolume_beats_random_search(name, accuracy_vs_latency):
    space, values, measure = accuracy_vs_latency
    seeds, budget = range(4), 60
    mine = [measure(search(name, space, values, budget, seed)) for seed in seeds]
    chance = [measure(search("random", space, values, budget, seed)) for seed in seeds]
    # random search's fronts hold ~0.3 of the attainable volume here, and vary by ~0.1
    assert np.mean(mine) > np.mean(chance) + 0.05, (mine, chance)


def two_objectives(arch):
    """A synthetic trade-off on NB201: convolutions help the first objective and cost the
    second; ``none`` edges hurt the first (a cut cell)."""
    ops = list(arch.values())
    quality = 2 * ops.count("nor_conv_3x3") + ops.count("nor_conv_1x1") - 3 * ops.count("none")
    cost = 4 * ops.count("nor_conv_3x3") + ops.count("nor_conv_1x1")
    return (float(quality), -float(cost))


FAST = {"mo-predictor": {"candidates": 40, "samples": 5}}


def drive(strategy, steps, batch=3):
    """Batches of parallel asks told in reverse order; returns the proposals."""
    proposals = []
    while len(proposals) < steps:
        archs = [strategy.ask() for _ in range(batch)]
        proposals += archs
        for arch in reversed(archs):
            strategy.tell(arch, two_objectives(arch))
    return proposals


@pytest.mark.parametrize("name", MULTI)
def test_same_seed_gives_the_same_proposals_and_another_seed_others(name):
    space = NB201Space()
    first = drive(make_strategy(name, space, seed=1, **FAST.get(name, {})), 24)
    again = drive(make_strategy(name, space, seed=1, **FAST.get(name, {})), 24)
    other = drive(make_strategy(name, space, seed=2, **FAST.get(name, {})), 24)
    assert first == again
    assert first != other


@pytest.mark.parametrize("name", MULTI)
def test_a_replayed_strategy_continues_exactly_like_the_original(name):
    space = NB201Space()
    original = make_strategy(name, space, seed=3, **FAST.get(name, {}))
    log = []  # ("ask", arch) and ("tell", arch, values), as a study stores them
    pending = []
    for step in range(30):
        pending.append(original.ask())
        log.append(("ask", pending[-1]))
        if step % 3 == 2:  # tell a batch of three in reverse order
            for arch in reversed(pending):
                values = None if step % 9 == 8 else two_objectives(arch)
                original.tell(arch, values)
                log.append(("tell", arch, values))
            pending = []
    replayed = make_strategy(name, space, seed=3, **FAST.get(name, {}))
    for event in log:
        if event[0] == "ask":
            assert replayed.ask() == event[1]
        else:
            replayed.tell(event[1], event[2])
    assert [original.ask() for _ in range(5)] == [replayed.ask() for _ in range(5)]


@pytest.mark.parametrize("name", MULTI)
def test_parallel_asks_are_distinct_before_and_after_the_model_starts(name):
    space = NB201Space()
    strategy = make_strategy(name, space, seed=0, **FAST.get(name, {}))
    seen = set()
    for _ in range(4):
        batch = [strategy.ask() for _ in range(6)]
        assert len(set(batch)) == len(batch)
        assert not seen & set(batch), "a proposal repeats an earlier one"
        seen |= set(batch)
        for arch in batch:
            strategy.tell(arch, two_objectives(arch))


@pytest.mark.parametrize(
    "name", ["nsga2", "mo-evolution", pytest.param("mo-predictor", marks=pytest.mark.slow)]
)
def test_one_objective_is_an_ordinary_search_that_beats_random_search(name):
    space = NB201Space()
    weights = np.random.default_rng(7).normal(size=len(space.encode(space.from_index(0))))

    def best(strategy_name):
        finals = []
        for seed in range(4):
            strategy = make_strategy(strategy_name, space, seed=seed, **FAST.get(strategy_name, {}))
            for _ in range(60):
                arch = strategy.ask()
                strategy.tell(arch, float(space.encode(arch) @ weights))  # a bare number
            assert strategy.best.values == (strategy.best.objective,)
            finals.append(strategy.best.objective)
        return np.mean(finals)

    # random search's best of 60 is a top-2% cell (1.4 here; the optimum is 3.2)
    assert best(name) > best("random") + 0.5


class CountingNB201(NB201Space):
    """NB201 counting its uniform samples (a breeding strategy mostly does not sample)."""

    samples = 0

    def sample(self, rng):
        self.samples += 1
        return super().sample(rng)


def test_nsga2_breeds_from_the_first_results_before_a_generation_is_told():
    space = CountingNB201()
    strategy = make_strategy("nsga2", space, seed=0, population_size=20, initial=4)
    for _ in range(4):
        arch = strategy.ask()
        strategy.tell(arch, two_objectives(arch))
    assert space.samples == 4
    children = [strategy.ask() for _ in range(6)]  # 10 results < population_size
    assert space.samples == 4, "asks after the initial samples should breed, not sample"
    assert len(set(children)) == 6
    assert len(strategy.population) == 4


def test_nsga2_keeps_the_population_size_by_environmental_selection():
    strategy = make_strategy("nsga2", NB201Space(), seed=0, population_size=8, initial=4)
    for _ in range(30):
        arch = strategy.ask()
        strategy.tell(arch, two_objectives(arch))
    assert len(strategy.population) == 8
    told = [o.values for o in strategy.history]
    front = {v for v in told if not any(dominates(w, v) for w in told)}
    assert len(front) <= 8
    # elitism: every non-dominated result told so far survives
    assert front <= {o.values for o in strategy.population}


WIDE = SearchSpace([Decision(f"d{i}", ("a", "b", "c", "d")) for i in range(12)])


def foreign_share(arch):
    """How many decisions are neither of the feasible parents' choices ("a" or "b")."""
    return sum(v not in ("a", "b") for v in arch.values())


@pytest.mark.parametrize("name", ["nsga2", "mo-evolution"])
def test_infeasible_results_are_never_parents_while_a_feasible_one_exists(name):
    strategy = make_strategy(name, WIDE, seed=0, initial=1)
    # two poor feasible results and many infeasible ones that dominate them by far
    strategy.tell(WIDE.make({f"d{i}": "a" for i in range(12)}), (0.0, 0.0))
    strategy.tell(WIDE.make({f"d{i}": "b" for i in range(12)}), (0.1, -0.1))
    rng = np.random.default_rng(0)
    for k in range(10):
        assignment = {f"d{i}": str(rng.choice(["c", "d"])) for i in range(12)}
        strategy.tell(WIDE.make(assignment), (10.0 + k, 10.0 - k), feasible=False)
    for _ in range(20):
        child = strategy.ask()
        # a child of the infeasible ones would carry ~12 foreign choices, not a few
        assert foreign_share(child) <= 4, child


def test_mo_predictor_draws_candidates_only_from_feasible_parents():
    strategy = make_strategy("mo-predictor", WIDE, seed=0, initial=2, parents=5)
    feasible = [WIDE.make({f"d{i}": c for i in range(12)}) for c in "ab"]
    for arch, values in zip(feasible, [(0.0, 0.0), (0.1, -0.1)], strict=True):
        strategy.tell(arch, values)
    rng = np.random.default_rng(0)
    for k in range(10):
        assignment = {f"d{i}": str(rng.choice(["c", "d"])) for i in range(12)}
        strategy.tell(WIDE.make(assignment), (10.0 + k, 10.0 - k), feasible=False)
    results = list(range(len(strategy.history)))
    parents = {tuple(code) for code in strategy._parents(results)}
    assert parents == {strategy._codec.code(a) for a in feasible}
    child = strategy.ask()  # and it still proposes a new member of the space
    assert child in WIDE and child not in feasible


def test_failed_results_are_never_parents_and_feasible_ones_rank_first():
    space = NB201Space()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(5)]
    strategy = make_strategy("nsga2", space, seed=0, initial=1)
    strategy.tell(archs[0], None)  # failed
    strategy.tell(archs[1], (5.0, 5.0), feasible=False)
    strategy.tell(archs[2], None, feasible=False)  # rejected before evaluation
    strategy.tell(archs[3], (1.0, 1.0))
    strategy.tell(archs[4], (2.0, 0.0))
    members = strategy.population
    assert [o.arch for o in members] == [archs[1], archs[3], archs[4]]
    assert list(constrained_ranks(members)) == [1, 0, 0]  # feasible before infeasible
    assert breeding_pool(members) == [1, 2]
    assert leading(members, 2) == [1, 2]


@pytest.mark.parametrize("name", MULTI)
def test_three_objectives_are_accepted(name):
    space = NB201Space()
    strategy = make_strategy(name, space, seed=0, **FAST.get(name, {}))
    for _ in range(25):
        arch = strategy.ask()
        ops = list(arch.values())
        strategy.tell(arch, tuple(float(ops.count(op)) for op in OPERATIONS[2:]))
    assert len(set(o.arch for o in strategy.history)) == 25
