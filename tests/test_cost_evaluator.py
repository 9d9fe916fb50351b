"""The cost evaluator: parameters and FLOPs of the built network, without training."""

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from archsearch.components import build_evaluator
from archsearch.errors import ArchsearchError
from archsearch.evaluate.cost import CostEvaluator
from archsearch.hardware import count_flops
from archsearch.space import NB201Space
from archsearch.space.base import Decision, SearchSpace

REFERENCE_COSTS = Path(__file__).parents[1].parent / "shared/data/nb201/reference_costs.csv"


def test_params_match_the_benchmark_exactly():
    space, evaluator = NB201Space(), CostEvaluator()
    evaluator.check_space(space)
    with REFERENCE_COSTS.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        values = evaluator.evaluate(space.from_string(row["arch"]), space).values
        assert values["params"] == round(float(row["params_millions"]) * 1e6), row["arch"]


def test_costs_are_deterministic_and_leave_the_global_random_state_alone():
    space, evaluator = NB201Space(), CostEvaluator()
    arch = space.from_index(1234)
    state = torch.get_rng_state()
    first = evaluator.evaluate(arch, space, seed=0).values
    assert torch.equal(torch.get_rng_state(), state)
    assert evaluator.evaluate(arch, space, seed=5).values == first
    model = space.build(arch, (3, 32, 32), 10)
    assert first["flops"] == count_flops(model, (3, 32, 32))
    assert (evaluator.objective_name, evaluator.objective_direction) == ("params", "min")


class Dense(SearchSpace):
    """A one-decision space of linear models that knows its input shape."""

    name = "dense"
    input_shape = (4, 2)

    def __init__(self):
        super().__init__([Decision("width", (3, 5))])

    def build(self, arch, input_shape, num_classes):
        width = arch["width"]
        inputs = input_shape[0] * input_shape[1]
        return nn.Sequential(nn.Flatten(), nn.Linear(inputs, width), nn.Linear(width, num_classes))


def test_input_shape_and_classes_default_to_the_space_and_round_trip():
    space = Dense()
    arch = space.make({"width": 3})
    values = CostEvaluator(num_classes=2).evaluate(arch, space).values
    assert values["params"] == (8 * 3 + 3) + (3 * 2 + 2)
    assert values["flops"] == 2 * (8 * 3 + 3 * 2)
    other = CostEvaluator(input_shape=[2, 2], num_classes=2)
    assert other.evaluate(arch, space).values["params"] == (4 * 3 + 3) + (3 * 2 + 2)
    assert build_evaluator(other.config()).config() == other.config()


def test_bad_options_and_spaces_without_networks_are_refused():
    for options in ({"input_shape": "3x32x32"}, {"input_shape": [3, 0]}, {"num_classes": 0}):
        with pytest.raises(ArchsearchError):
            build_evaluator({"name": "cost", **options})
    with pytest.raises(ArchsearchError, match="does not build"):
        CostEvaluator().check_space(SearchSpace([Decision("x", (1, 2))]))
