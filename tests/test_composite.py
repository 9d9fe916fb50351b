"""The composite evaluator: several evaluators' values in one result, under one study."""

import math

import numpy as np
import pytest

from archsearch.components import build_evaluator
from archsearch.errors import ArchsearchError, DataError, UnknownComponentError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.evaluate.composite import CompositeEvaluator
from archsearch.space import NB201Space
from archsearch.space.table import TableSpace
from archsearch.strategy import make_strategy
from archsearch.study import Study

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
ARCH_PARAMS = 316346  # reference_costs.csv: 0.316346 million


def composite(nb201_csv, *more):
    table = {"name": "nb201-table", "table": str(nb201_csv), "dataset": "cifar10"}
    return {"name": "composite", "evaluators": [table, {"name": "cost"}, *more]}


class Fixed(Evaluator):
    """Reports given values; records what it was called with."""

    name = "fixed"

    def __init__(self, values, objective="fixed", fidelity=False, model=None, fail=False):
        self.values, self.objective_name, self.supports_fidelity = values, objective, fidelity
        self.model, self.keeps_model, self.fail, self.calls = model, model is not None, fail, []

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        self.calls.append((seed, fidelity, time_limit))
        if self.fail:
            raise RuntimeError("this part failed")
        return EvalResult(dict(self.values), self.model)


@pytest.mark.slow
def test_table_and_cost_give_accuracy_and_params_in_one_result(nb201_csv):
    evaluator = build_evaluator(composite(nb201_csv))
    space = NB201Space()
    evaluator.check_space(space)
    values = evaluator.evaluate(space.from_string(ARCH), space).values
    assert {"cifar10_valid", "cifar10_test", "nb201_index", "params", "flops"} <= set(values)
    assert values["params"] == ARCH_PARAMS
    assert (evaluator.objective_name, evaluator.objective_direction) == ("cifar10_valid", "max")
    assert evaluator.reported_name == "cifar10_test"  # the first part's defaults


@pytest.mark.slow
def test_a_study_declares_objective_and_constraint_over_both_parts(nb201_csv):
    bound = 4e5
    config = {
        "space": {"name": "nb201"},
        "strategy": {"name": "random"},
        "evaluator": composite(nb201_csv),
        "objectives": ["cifar10_valid:max"],
        "constraints": [f"params<={bound}"],
        "seed": 3,
        "budget": {"evaluations": 6, "seconds": None},
    }
    study = Study.from_config(config)
    study.optimize()
    assert study.declaration.primary.name == "cifar10_valid"
    # the cost part knows params beforehand: proposals over the bound are refused unevaluated
    evaluated = [t for t in study.trials if t.status != "infeasible"]
    assert len(evaluated) == 6 == study.n_finished
    for trial in evaluated:
        assert trial.status == "complete"
        assert {"cifar10_valid", "cifar10_test", "params", "flops"} <= set(trial.values)
        assert trial.objective == trial.values["cifar10_valid"]
        assert trial.feasible and trial.values["params"] <= bound
    refused = [t for t in study.trials if t.status == "infeasible"]
    assert all(t.values["params"] > bound and "cifar10_valid" not in t.values for t in refused)
    assert study.best.objective == max(t.objective for t in evaluated)


@pytest.mark.slow
def test_the_configuration_round_trips_through_the_registry(nb201_csv):
    evaluator = build_evaluator(composite(nb201_csv))
    again = build_evaluator(evaluator.config())
    assert again.config() == evaluator.config()
    assert [p.name for p in again.parts] == ["nb201-table", "cost"]
    space = NB201Space()
    arch = space.from_string(ARCH)
    assert again.evaluate(arch, space).values == evaluator.evaluate(arch, space).values


def test_two_parts_declaring_the_same_value_are_refused(nb201_csv):
    with pytest.raises(ArchsearchError, match="part 1 \\(cost\\) and part 2 \\(cost\\) both"):
        build_evaluator(composite(nb201_csv, {"name": "cost", "input_shape": [3, 64, 64]}))


def test_parts_that_report_a_name_with_different_values_stop_the_study(nb201_csv):
    space = NB201Space()
    clash = CompositeEvaluator([build_evaluator({"name": "cost"}), Fixed({"params": 1.0})])
    with pytest.raises(ArchsearchError, match="part 0 \\(cost\\) reports params = .*part 1"):
        clash.evaluate(space.from_string(ARCH), space)
    study = Study(space, make_strategy("random", space), clash)
    with pytest.raises(ArchsearchError, match="each value needs one source"):
        study.optimize(1)


def test_parts_that_agree_on_a_shared_name_merge(nb201_csv):
    space = NB201Space()
    # the table's packaged costs are the CIFAR-10 network's, which the cost evaluator builds
    values = build_evaluator(composite(nb201_csv)).evaluate(space.from_string(ARCH), space).values
    assert values["params"] == ARCH_PARAMS
    # two datasets' tables disagree: CIFAR-100's network has a wider classifier
    both = {"name": "composite", "evaluators": [
        {"name": "nb201-table", "table": str(nb201_csv), "dataset": "cifar10"},
        {"name": "nb201-table", "table": str(nb201_csv), "dataset": "cifar100"},
    ]}  # fmt: skip
    with pytest.raises(ArchsearchError, match="reports params = 316346.0, part 1"):
        build_evaluator(both).evaluate(space.from_string(ARCH), space)
    nan = CompositeEvaluator([Fixed({"x": math.nan}, "a"), Fixed({"x": math.nan}, "b")])
    assert math.isnan(nan.evaluate(space.from_string(ARCH), space).values["x"])


def test_a_bad_part_is_named(nb201_csv, tmp_path):
    bad_dataset = {"name": "nb201-table", "table": str(nb201_csv), "dataset": "mnist"}
    with pytest.raises(DataError, match="part 0 \\(nb201-table\\): unknown NAS-Bench-201"):
        build_evaluator({"name": "composite", "evaluators": [bad_dataset]})
    with pytest.raises(ArchsearchError, match="part 2 \\(cost\\): bad options .*colour"):
        build_evaluator(composite(nb201_csv, {"name": "cost", "colour": "red"}))
    with pytest.raises(UnknownComponentError, match="part 1 \\(oracle\\): unknown evaluator"):
        build_evaluator({"name": "composite", "evaluators": [{"name": "cost"}, {"name": "oracle"}]})
    for bad in ([], {"name": "cost"}, [{"table": "x"}]):
        with pytest.raises(ArchsearchError, match="composite"):
            build_evaluator({"name": "composite", "evaluators": bad})
    path = tmp_path / "t.csv"
    path.write_text("depth,val\n1,80\n2,90\n")
    evaluator = build_evaluator({"name": "composite", "evaluators": [
        {"name": "table", "table": str(path), "objective": "val"}, {"name": "cost"}]})  # fmt: skip
    with pytest.raises(ArchsearchError, match="part 1 \\(cost\\): .*does not build"):
        evaluator.check_space(TableSpace(str(path), objective="val"))


def test_fidelity_time_and_model_reach_the_parts():
    space = NB201Space()
    arch = space.sample(np.random.default_rng(0))
    model = object()
    first = Fixed({"a": 1.0}, "a")
    second = Fixed({"b": 2.0}, "b", fidelity=True, model=model)
    evaluator = CompositeEvaluator([first, second])
    assert evaluator.supports_fidelity and evaluator.keeps_model
    result = evaluator.evaluate(arch, space, seed=7, fidelity=3, time_limit=100.0)
    assert result.values == {"a": 1.0, "b": 2.0} and result.model is model
    assert first.calls[0][:2] == second.calls[0][:2] == (7, 3)
    assert 0 <= second.calls[0][2] <= first.calls[0][2] == 100.0
    assert not CompositeEvaluator([Fixed({"a": 1.0}, "a")]).supports_fidelity


def test_an_error_in_one_part_fails_the_trial():
    space = NB201Space()
    evaluator = CompositeEvaluator([Fixed({"a": 1.0}, "a"), Fixed({}, "b", fail=True)])
    study = Study(space, make_strategy("random", space), evaluator)
    study.optimize(2)
    assert [t.status for t in study.trials] == ["failed", "failed"]
    assert "this part failed" in study.trials[0].error
