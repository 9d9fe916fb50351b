"""Hard constraints checked before evaluation, MnasNet's soft constraint, and what a
multi-objective study returns (its Pareto front, hypervolume and a picked member).

The evaluator here knows one cost without evaluating: ``convs``, the number of
convolutions in an NB201 cell, a stand-in for #params that a table would store.
"""

import json

import numpy as np
import pytest

from archsearch.cli.main import main
from archsearch.errors import ArchsearchError, StudyError
from archsearch.evaluate.tabular import NB201TableEvaluator
from archsearch.space.nb201 import NB201Space
from archsearch.strategy.base import STRATEGIES
from archsearch.strategy.pareto import pareto_mask
from archsearch.study import Study
from archsearch.study.objectives import Constraint, Declaration, Objective, SoftConstraint
from archsearch.study.storage import Storage


def convs(arch) -> int:
    return sum(str(op).startswith("nor_conv") for op in arch.values())


class CountingTable(NB201TableEvaluator):
    """Reports ``convs`` and knows it beforehand; counts its (costly) evaluations."""

    def __init__(self, table, dataset="cifar10"):
        super().__init__(table, dataset)
        self.evaluated = []

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        self.evaluated.append(arch)
        result = super().evaluate(arch, space, seed=seed, fidelity=fidelity)
        result.values["convs"] = float(convs(arch))
        return result

    def cheap_values(self, arch, space):
        return {"convs": float(convs(arch))}

    def value_names(self, space):
        return super().value_names(space) | {"convs"}


def study(nb201_csv, strategy="evolution", budget=40, storage=None, **declared):
    space = NB201Space()
    declaration = Declaration(
        objectives=declared.get("objectives", (Objective("cifar10_valid"),)),
        constraints=declared.get("constraints", ()),
        reported="cifar10_test",
        soft_constraints=declared.get("soft", ()),
    )
    return Study(
        space,
        STRATEGIES.get(strategy)(space, seed=3),
        CountingTable(str(nb201_csv)),
        storage=storage or Storage(),
        declaration=declaration,
    ), budget


def single_objective_strategies():
    return [n for n in STRATEGIES.names() if STRATEGIES.get(n).max_objectives == 1]


@pytest.mark.parametrize("name", ["random", "evolution", "local", "reinforce"])
def test_an_infeasible_architecture_is_never_evaluated_nor_counted(nb201_csv, name):
    s, budget = study(nb201_csv, name, constraints=(Constraint("convs", "<=", 1),))
    s.optimize(n_evaluations=budget)
    evaluated = s.evaluator.evaluated
    assert len(evaluated) == budget == s.n_finished
    assert all(convs(a) <= 1 for a in evaluated)
    rejected = [t for t in s.trials if t.status == "infeasible"]
    assert rejected, "convs<=1 admits ~1/3 of the space: some proposals must be refused"
    assert all(t.feasible is False and t.values["convs"] > 1 for t in rejected)
    summary = s.summary()
    assert summary["n_rejected"] == len(rejected) and summary["n_evaluations"] == budget
    assert [r["evaluations"] for r in s.trajectory()] == list(range(1, budget + 1))


@pytest.mark.slow
def test_every_single_objective_strategy_searches_inside_the_constraint(nb201_csv):
    for name in single_objective_strategies():
        s, _ = study(nb201_csv, name, constraints=(Constraint("convs", "<=", 2),))
        s.optimize(n_evaluations=25)
        assert all(convs(a) <= 2 for a in s.evaluator.evaluated), name
        assert s.best is not None and convs(s.best_arch()) <= 2, name


def test_a_resumed_constrained_study_replays_its_rejections(nb201_csv, tmp_path):
    from archsearch.study.storage import SQLiteStorage

    constraint = (Constraint("convs", "<=", 1),)
    whole, _ = study(nb201_csv, constraints=constraint)
    whole.optimize(n_evaluations=30)
    path = tmp_path / "study.db"
    first, _ = study(nb201_csv, constraints=constraint, storage=SQLiteStorage.create(path))
    first.optimize(n_evaluations=12)
    first.close()
    again, _ = study(nb201_csv, constraints=constraint, storage=SQLiteStorage(path, writable=True))
    again.optimize(n_evaluations=30)
    assert [(t.arch, t.status) for t in again.trials] == [(t.arch, t.status) for t in whole.trials]


def test_a_constraint_that_admits_nothing_stops_with_a_clear_error(nb201_csv):
    s, _ = study(nb201_csv, "random", constraints=(Constraint("convs", "<=", -1),))
    with pytest.raises(ArchsearchError, match="in a row break the constraints"):
        s.optimize(n_evaluations=5)
    assert s.evaluator.evaluated == []


def test_the_soft_constraint_is_mnasnets_reward():
    soft = SoftConstraint("latency", "<=", 20.0)
    declared = Declaration((Objective("acc"),), soft_constraints=(soft,))
    assert declared.score({"acc": 90.0, "latency": 40.0}) == pytest.approx(90 * 2**-0.07)
    assert declared.score({"acc": 90.0, "latency": 10.0}) == pytest.approx(90 * 0.5**-0.07)
    assert declared.vector({"acc": 90.0, "latency": 0.0}) is None  # no reward of a free net
    with pytest.raises(ArchsearchError, match="must then be maximised"):
        Declaration((Objective("loss", "min"),), soft_constraints=(soft,))
    with pytest.raises(ArchsearchError, match="negative"):
        SoftConstraint("latency", "<=", 20.0, weight=0.5)


def test_a_soft_constraint_steers_a_single_objective_search_to_its_target(nb201_csv):
    free, budget = study(nb201_csv, "evolution", budget=80)
    free.optimize(n_evaluations=budget)
    # a strong weight, so that the 1..6 convolutions of a cell matter against accuracy
    soft = (SoftConstraint("convs", "<=", 1.0, weight=-0.5),)
    steered, _ = study(nb201_csv, "evolution", soft=soft)
    steered.optimize(n_evaluations=budget)
    mean = lambda s: np.mean([convs(a) for a in s.evaluator.evaluated[-40:]])  # noqa: E731
    assert mean(steered) < mean(free) - 1
    best = steered.best
    assert best.objective == pytest.approx(
        best.values["cifar10_valid"] * best.values["convs"] ** -0.5
    )


def two_objective_study(nb201_csv, budget=60):
    s, _ = study(
        nb201_csv, "random", objectives=(Objective("cifar10_valid"), Objective("convs", "min"))
    )
    s.optimize(n_evaluations=budget)
    return s


def test_the_front_is_every_non_dominated_feasible_trial(nb201_csv):
    s = two_objective_study(nb201_csv)
    trials = [t for t in s.trials if t.status == "complete"]
    points = np.array([[t.values["cifar10_valid"], -t.values["convs"]] for t in trials])
    expected = {tuple(p) for p in points[pareto_mask(points)]}
    front = s.pareto_front()
    assert {(t.values["cifar10_valid"], -t.values["convs"]) for t in front} == expected
    assert len(front) == len(expected)  # one trial per point
    assert [t.values["cifar10_valid"] for t in front] == sorted(
        (t.values["cifar10_valid"] for t in front), reverse=True
    )
    summary = s.summary()
    assert [m["trial"] for m in summary["pareto"]] == [t.number for t in front]
    assert set(summary["pareto"][0]["values"]) == {"cifar10_valid", "convs", "cifar10_test"}
    volume = summary["hypervolume"]
    assert volume["value"] > 0 and set(volume["reference"]) == {"cifar10_valid", "convs"}


def test_pick_takes_the_most_accurate_front_member_meeting_the_condition(nb201_csv):
    s = two_objective_study(nb201_csv)
    picked = s.pick([Constraint("convs", "<=", 2)])
    front = [t for t in s.pareto_front() if t.values["convs"] <= 2]
    assert picked.number == max(front, key=lambda t: t.values["cifar10_valid"]).number
    with pytest.raises(StudyError, match="meets convs<=-1"):
        s.pick([Constraint("convs", "<=", -1)])


def test_show_prints_the_front_of_a_two_objective_search(nb201_csv, tmp_path, capsys):
    out = tmp_path / "s"
    args = ["search", "--space", "nb201", "--strategy", "random", "--evaluator", "nb201-table"]
    args += ["--table", str(nb201_csv), "--objective", "cifar10_valid:max"]
    args += ["--objective", "cifar100_valid:max", "--budget", "30", "--quiet", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["show", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["pareto"] and summary["hypervolume"]["value"] > 0
    assert main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "pareto front" in text and "hypervolume" in text
    single = tmp_path / "single"
    assert main([*args[:9], "--budget", "5", "--quiet", "--out", str(single)]) == 0
    capsys.readouterr()
    assert main(["show", str(single), "--json"]) == 0
    assert "pareto" not in json.loads(capsys.readouterr().out)


def test_soft_constraint_flags_are_stored_and_bad_ones_refused(nb201_csv, tmp_path, capsys):
    out = tmp_path / "s"
    args = ["search", "--space", "nb201", "--strategy", "random", "--evaluator", "nb201-table"]
    args += ["--table", str(nb201_csv), "--budget", "5", "--quiet"]
    soft = ["--soft-constraint", "cifar100_valid>=60", "--soft-weight", "-0.2"]
    assert main([*args, *soft, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["show", str(out), "--json"]) == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["soft_constraints"] == [
        {"name": "cifar100_valid", "op": ">=", "bound": 60.0, "weight": -0.2}
    ]
    bad = ["--soft-constraint", "cifar100_valid>=60", "--soft-weight", "0.3"]
    assert main([*args, *bad, "--out", str(tmp_path / "bad")]) == 2
    assert "negative" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_plot_draws_the_front_and_refuses_an_unwritable_path(nb201_csv, tmp_path, capsys):
    out = tmp_path / "s"
    args = ["search", "--space", "nb201", "--strategy", "random", "--evaluator", "nb201-table"]
    args += ["--table", str(nb201_csv), "--objective", "cifar10_valid", "--objective"]
    args += ["cifar100_valid", "--budget", "20", "--quiet", "--out", str(out)]
    assert main(args) == 0
    png = tmp_path / "front.png"
    assert main(["plot", str(out), "--to", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["plot", str(out), "--to", str(tmp_path / "missing" / "f.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "nothing"), "--to", str(png)]) == 2


def test_mnasnets_second_variant_does_not_reward_undershooting():
    hard_ish = SoftConstraint("latency", "<=", 20.0, weight=-1.0, weight_inside=0.0)
    assert hard_ish.factor(10.0) == 1.0 and hard_ish.factor(40.0) == pytest.approx(0.5)
    assert SoftConstraint("latency", ">=", 20.0).factor(40.0) == pytest.approx(0.5**-0.07)
    with pytest.raises(ArchsearchError, match="weight_inside"):
        SoftConstraint("latency", "<=", 20.0, weight_inside=0.1)


@pytest.mark.parametrize(
    "name,objectives",
    [
        ("mo-predictor", (Objective("cifar10_valid"), Objective("convs", "min"))),
        pytest.param("bananas", (Objective("cifar10_valid"),), marks=pytest.mark.slow),
    ],
)
def test_model_based_strategies_rank_only_admissible_candidates(nb201_csv, name, objectives):
    """Once their model ranks candidates, no proposal is refused: the study's ``admissible``
    filter drops candidates known to break the constraint before the acquisition picks one
    (without it, the model's favourites, large cells, would be refused again and again)."""
    s, _ = study(
        nb201_csv, name, objectives=objectives, constraints=(Constraint("convs", "<=", 1),)
    )
    assert s.strategy.admissible is not None
    s.optimize(n_evaluations=30)
    initial = s.strategy.initial
    numbers = [t.number for t in s.trials if t.status != "infeasible"]
    refused = [t.number for t in s.trials if t.status == "infeasible"]
    assert refused, "the uniform initial proposals break convs<=1 two times in three"
    assert max(refused) < numbers[initial], "a model-ranked proposal was refused"
