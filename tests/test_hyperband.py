"""Hyperband and BOHB: the bracket schedule, ask/tell with fidelities, and search quality."""

import math
import warnings

import numpy as np
import pytest

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.evaluate.tabular import NB201TableEvaluator
from archsearch.space import NB201Space
from archsearch.strategy import make_strategy
from archsearch.strategy.bohb import CategoricalKDE
from archsearch.strategy.hyperband import hyperband_brackets
from archsearch.study import SQLiteStorage, Study
from archsearch.tables import load_nb201_table

MAX = 27


class NoisyFidelityNB201(Evaluator):
    """A synthetic multi-fidelity benchmark on NAS-Bench-201 (fidelity = "epochs", 1..27).

    At fidelity f the objective is the 200-epoch validation accuracy shrunk toward zero and
    blurred by noise, both fading as ``t = log f / log 27`` goes to 1; at f = 27 it is the
    table's value. The noise is a fixed function of (architecture, fidelity), so a repeated
    evaluation repeats its result, as a seeded training would.
    """

    name = "noisy-fidelity-nb201"
    supports_fidelity = True
    reported_name = "test"

    def __init__(self, table, dataset="cifar10"):
        self.nb201 = load_nb201_table(table)
        self.valid = self.nb201.column(f"{dataset}_valid")
        self.test = self.nb201.column(f"{dataset}_test")

    def value(self, arch, fidelity):
        i = self.nb201.space.index(arch)
        t = math.log(fidelity) / math.log(MAX)
        noise = np.random.default_rng([i, round(fidelity * 1000)]).normal()
        return float(self.valid[i] * (0.7 + 0.3 * t) + 2.0 * (1 - t) * noise)

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        fidelity = MAX if fidelity is None else fidelity
        i = self.nb201.space.index(arch)
        return EvalResult({"objective": self.value(arch, fidelity), "test": float(self.test[i])})


def synthetic(arch):
    """Count of 3x3 convolutions; the benchmark index breaks ties (promotions are then unique)."""
    values = list(arch.values())
    return values.count("nor_conv_3x3") + 1e-6 * SPACE.index(arch)


SPACE = NB201Space()


# ----------------------------------------------------------------- schedule
def test_brackets_are_li_et_al_hyperband_for_eta_3_from_1_to_81():
    # Li et al. 2018, Sec. 3.3 (R = 81, eta = 3): n_i configurations at r_i each
    assert hyperband_brackets(1, 81, 3) == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]


def test_default_schedule_from_1_to_27_epochs_and_its_cost():
    brackets = hyperband_brackets(1, 27, 3)
    assert brackets == [
        [(27, 1), (9, 3), (3, 9), (1, 27)],
        [(12, 3), (4, 9), (1, 27)],
        [(6, 9), (2, 27)],
        [(4, 27)],
    ]
    evaluations = sum(n for bracket in brackets for n, _ in bracket)
    cost = sum(n * r / 27 for bracket in brackets for n, r in bracket)
    assert evaluations == 69 and cost == pytest.approx(15 + 2 / 3)


def test_fractional_fidelities_are_kept_and_equal_bounds_give_one_full_bracket():
    assert hyperband_brackets(2.0, 200.0, 3)[0][0] == (81, pytest.approx(200 / 81))
    assert hyperband_brackets(5, 5, 3) == [[(1, 5)]]
    with pytest.raises(ArchsearchError, match="eta > 1"):
        hyperband_brackets(1, 27, 1)
    with pytest.raises(ArchsearchError, match="min_fidelity <= max_fidelity"):
        make_strategy("hyperband", NB201Space(), min_fidelity=30, max_fidelity=27)


@pytest.mark.parametrize("name", ["hyperband", "bohb"])
def test_one_sequential_cycle_follows_the_schedule_and_promotes_the_best(name):
    strategy = make_strategy(name, NB201Space(), seed=0)
    proposals = []
    for _ in range(69):
        arch, fidelity = strategy.propose()
        proposals.append((arch, fidelity))
        strategy.tell(arch, synthetic(arch), fidelity=fidelity)
    fidelities = [f for _, f in proposals]
    expected = [r for bracket in hyperband_brackets(1, 27, 3) for n, r in bracket for _ in range(n)]
    assert fidelities == expected
    assert all(isinstance(f, int) for f in fidelities)  # integer bounds: integer epochs
    # successive halving: rung 1 of the first bracket is the best 9 of its 27 at fidelity 1
    first, second = proposals[:27], proposals[27:36]
    best9 = sorted(first, key=lambda p: -synthetic(p[0]))[:9]
    assert [a for a, _ in second] == [a for a, _ in best9]
    assert strategy._brackets == []  # a complete cycle closes every bracket


@pytest.mark.parametrize("name", ["hyperband", "bohb"])
def test_promotion_waits_for_the_rung_and_parallel_asks_open_the_next_bracket(name):
    strategy = make_strategy(name, NB201Space(), seed=0)
    rung0 = [strategy.propose() for _ in range(27)]
    assert {f for _, f in rung0} == {1}
    # bracket 0 now waits for 27 results: the next asks start bracket 1 (fidelity 3)
    waiting = [strategy.propose() for _ in range(3)]
    assert [f for _, f in waiting] == [3, 3, 3]
    assert len({a for a, _ in rung0 + waiting}) == 30
    for arch, fidelity in reversed(rung0[1:]):  # results arrive in any order...
        strategy.tell(arch, synthetic(arch), fidelity=fidelity)
    assert strategy.propose()[1] == 3  # ...and one missing result still blocks promotion
    strategy.tell(rung0[0][0], synthetic(rung0[0][0]), fidelity=1)
    promoted = strategy.propose()
    assert promoted == (max(rung0, key=lambda p: synthetic(p[0]))[0], 3)


@pytest.mark.parametrize("name", ["hyperband", "bohb"])
def test_failed_evaluations_are_never_promoted(name):
    strategy = make_strategy(name, NB201Space(), seed=1)
    failed = set()
    for i in range(27):
        arch, fidelity = strategy.propose()
        value = None if i % 2 == 0 else synthetic(arch)
        if value is None:
            failed.add(arch)
        strategy.tell(arch, value, fidelity=fidelity)
    promoted = [strategy.propose() for _ in range(9)]
    assert all(f == 3 and a not in failed for a, f in promoted)
    assert strategy.best is not None and strategy.best.objective is not None


def test_best_is_taken_at_the_highest_fidelity_reached():
    strategy = make_strategy("hyperband", NB201Space(), seed=0)
    a, b = (
        NB201Space().sample(np.random.default_rng(0)),
        NB201Space().sample(np.random.default_rng(1)),
    )
    strategy.tell(a, 90.0, fidelity=1)
    strategy.tell(b, 80.0, fidelity=9)
    assert strategy.best.arch == b


@pytest.mark.parametrize("name", ["hyperband", "bohb"])
def test_same_seed_gives_the_same_proposals(name):
    def run(seed):
        strategy = make_strategy(name, NB201Space(), seed=seed)
        out = []
        for _ in range(60):
            arch, fidelity = strategy.propose()
            out.append((arch, fidelity))
            strategy.tell(arch, synthetic(arch), fidelity=fidelity)
        return out

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_plain_ask_and_tell_without_fidelity_still_drive_the_brackets():
    strategy = make_strategy("bohb", NB201Space(), seed=0)
    for _ in range(40):
        arch = strategy.ask()
        strategy.tell(arch, synthetic(arch))  # fidelity omitted: matched by architecture
    assert strategy._brackets == []  # bracket 0 (40 evaluations) is complete
    assert strategy.propose()[1] == 3  # and bracket 1 starts


# ------------------------------------------------------------------ the model
def test_aitchison_aitken_kde_is_a_normalised_density():
    cards = np.array([2, 3, 4])
    codes = np.array([[0, 1, 2], [1, 1, 3], [0, 2, 0]])
    kde = CategoricalKDE(codes, cards, min_bandwidth=0.05)
    grid = np.array(np.meshgrid(*[np.arange(c) for c in cards], indexing="ij")).reshape(3, -1).T
    assert np.exp(kde.log_density(grid)).sum() == pytest.approx(1.0)
    assert (kde.bandwidth <= (cards - 1) / cards).all()
    draws = kde.sample(np.random.default_rng(0), 2000)
    assert ((draws >= 0) & (draws < cards)).all()
    # with bandwidth < (c-1)/c each point's own value is the most likely draw
    assert np.mean(draws[:, 1] == 1) > 0.4


def test_bohb_fits_its_model_at_the_highest_fidelity_with_enough_points():
    space = NB201Space()
    strategy = make_strategy("bohb", space, seed=0)
    assert strategy.model() is None
    rng = np.random.default_rng(0)
    for _ in range(strategy.n_min + 2):  # 9 points at fidelity 1
        arch = space.sample(rng)
        strategy.tell(arch, synthetic(arch), fidelity=1)
    for _ in range(4):  # too few at fidelity 9
        arch = space.sample(rng)
        strategy.tell(arch, synthetic(arch), fidelity=9)
    good, bad = strategy.model()
    assert len(good.codes) == strategy.n_min and len(bad.codes) == 2


# -------------------------------------------------------------- search quality
def run_at_cost(name, seed, evaluator, cost, **options):
    """Propose and tell until ``cost`` full evaluations are spent; test acc of the best."""
    space = evaluator.nb201.space
    strategy = make_strategy(name, space, seed=seed, **options)
    spent = 0.0
    while spent < cost:
        arch, fidelity = strategy.propose()
        fidelity = MAX if fidelity is None else fidelity
        strategy.tell(arch, evaluator.value(arch, fidelity), fidelity=fidelity)
        spent += fidelity / MAX
    return float(evaluator.test[space.index(strategy.best.arch)])


@pytest.mark.slow
def test_hyperband_and_bohb_beat_random_search_at_equal_cost(nb201_csv):
    evaluator = NoisyFidelityNB201(nb201_csv)
    seeds = range(12)
    random = np.mean([run_at_cost("random", s, evaluator, 30) for s in seeds])
    hyperband = np.mean([run_at_cost("hyperband", s, evaluator, 30) for s in seeds])
    bohb = np.mean([run_at_cost("bohb", s, evaluator, 30) for s in seeds])
    assert hyperband > random + 0.1
    assert bohb > random + 0.1


@pytest.mark.slow
def test_bohb_model_beats_uniform_sampling_with_one_full_fidelity_bracket(nb201_csv):
    # min = max fidelity: Hyperband is random search and BOHB is TPE on its own, so this
    # isolates the model (a BOHB whose model silently did nothing would tie random here)
    evaluator = NoisyFidelityNB201(nb201_csv)
    seeds = range(16)
    options = {"min_fidelity": MAX, "max_fidelity": MAX}
    plain = np.mean([run_at_cost("hyperband", s, evaluator, 100, **options) for s in seeds])
    model = np.mean([run_at_cost("bohb", s, evaluator, 100, **options) for s in seeds])
    assert model > plain + 0.1


# ------------------------------------------------------------------- studies
@pytest.mark.parametrize("name", ["hyperband", "bohb"])
@pytest.mark.slow
def test_study_stores_fidelities_and_resumes_where_it_stopped(name, nb201_csv, tmp_path):
    evaluator = NoisyFidelityNB201(nb201_csv)
    space = NB201Space()

    def study(path):
        strategy = make_strategy(name, space, seed=3)
        return Study(space, strategy, evaluator, storage=SQLiteStorage.open(path), seed=3)

    whole = study(tmp_path / "whole.db")
    whole.optimize(80)
    expected = [(t.arch, t.fidelity) for t in whole.trials]
    assert [f for _, f in expected[:30]] == [1] * 27 + [3] * 3

    first = study(tmp_path / "parts.db")
    first.optimize(45)
    first.close()
    resumed = study(tmp_path / "parts.db")  # a new strategy, replayed from storage
    resumed.optimize(80)
    assert [(t.arch, t.fidelity) for t in resumed.trials] == expected
    assert resumed.best.objective == whole.best.objective


def test_options_round_trip_and_bad_options_name_the_value():
    strategy = make_strategy("bohb", NB201Space(), seed=0, max_fidelity=9, eta=2)
    again = make_strategy("bohb", NB201Space(), seed=0, **strategy.options())
    assert again.schedule == strategy.schedule
    # integer bounds round each rung to whole epochs (9/8, 9/4, 9/2 -> 1, 2, 5)
    assert strategy.schedule[0] == [(8, 1), (4, 2), (2, 5), (1, 9)]
    with pytest.raises(ArchsearchError, match="top_quantile.*1.5"):
        make_strategy("bohb", NB201Space(), top_quantile=1.5)


def test_a_table_without_fidelity_gets_a_warning_and_a_fidelity_evaluator_none(nb201_csv):
    space = NB201Space()
    with pytest.warns(UserWarning, match="ignores it"):
        Study(space, make_strategy("hyperband", space), NB201TableEvaluator(str(nb201_csv)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Study(space, make_strategy("bohb", space), NoisyFidelityNB201(nb201_csv))
        Study(space, make_strategy("evolution", space), NB201TableEvaluator(str(nb201_csv)))
