"""Define-by-run spaces: a user's model asks for choices by label; archsearch searches them."""

import itertools
import json

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.components import build_space
from archsearch.errors import ArchsearchError, InvalidArchitectureError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.space import DefineByRunSpace, choice, fixed_choices, make_space
from archsearch.strategy import make_strategy
from archsearch.study import Budget, Study


# Factories live at module level so that the space can record them by import string.
class ToyCNN(nn.Module):
    """depth in {1, 2}, a kernel per layer in {3, 5}: 2 + 2 * 2 = 6 distinct models."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        channels, layers = input_shape[0], []
        for i in range(choice("depth", [1, 2])):
            kernel = choice(f"layer{i}.kernel", [3, 5])
            layers += [nn.Conv2d(channels, 4, kernel, padding=kernel // 2), nn.ReLU()]
            channels = 4
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


def nested(input_shape, num_classes):
    """``deep.extra`` is asked only when depth is 3 *and* layer2.kernel is 5."""
    depth = choice("depth", [1, 2, 3])
    for i in range(depth):
        kernel = choice(f"layer{i}.kernel", [3, 5])
        if i == 2 and kernel == 5:
            choice("deep.extra", ["a", "b"])
    return nn.Linear(1, num_classes)


def joint(input_shape, num_classes):
    """``both`` is asked only when two independent decisions both leave their default."""
    if choice("a", [0, 1]) == 1 and choice("b", [0, 1]) == 1:
        choice("both", [True, False])
    choice("b", [0, 1])
    return nn.Linear(1, num_classes)


def needs_real_tensors(input_shape, num_classes):
    """Calls .item() in its constructor, which the meta device cannot do."""
    width = choice("width", [2, 4])
    assert torch.ones(width).sum().item() == width
    return nn.Linear(width, num_classes)


def shape_dependent(input_shape, num_classes):
    if input_shape[1] > 8:
        choice("big.extra", [1, 2])
    return nn.Linear(choice("width", [2, 4]), num_classes)


@pytest.fixture(scope="module")
def toy():
    return DefineByRunSpace(ToyCNN, (1, 8, 8), 3)


def test_choice_outside_archsearch_returns_the_first_option_so_the_model_works_alone():
    model = ToyCNN((1, 8, 8), 3)
    assert [m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d)] == [(3, 3)]


def test_discovery_finds_labels_that_only_appear_under_conditions(toy):
    assert [(d.label, d.choices) for d in toy.decisions] == [
        ("depth", (1, 2)),
        ("layer0.kernel", (3, 5)),
        ("layer1.kernel", (3, 5)),
    ]
    labels = [d.label for d in DefineByRunSpace(nested, (1,), 2).decisions]
    assert labels == ["depth", "layer0.kernel", "layer1.kernel", "layer2.kernel", "deep.extra"]


def test_random_probes_find_labels_that_need_several_decisions_changed_at_once():
    assert "both" in [d.label for d in DefineByRunSpace(joint, (1,), 2).decisions]
    assert "both" not in [
        d.label for d in DefineByRunSpace(joint, (1,), 2, random_probes=0).decisions
    ]


def test_size_counts_distinct_models_not_assignments(toy):
    assert toy.size() == 6  # depth 1: 2 kernels; depth 2: 2 x 2 kernels
    archs = list(toy.enumerate())
    assert len(set(archs)) == 6 and all(toy.is_valid(a) for a in archs)


def test_enumerate_yields_the_canonical_form_of_every_assignment_once():
    space = DefineByRunSpace(nested, (1,), 2)
    ranges = [range(len(d.choices)) for d in space.decisions]
    every = {space.canonical(space._from_indices(ix)) for ix in itertools.product(*ranges)}
    models = list(space.enumerate())
    assert len(models) == len(every) == space.size() == 2 + 4 + (4 + 4 * 2)
    assert set(models) == every


def test_canonical_form_resets_inactive_decisions_to_their_first_choice(toy):
    arch = toy.canonical({"depth": 1, "layer0.kernel": 5, "layer1.kernel": 5})
    assert arch.to_dict() == {"depth": 1, "layer0.kernel": 5, "layer1.kernel": 3}
    assert toy.active(arch) == ("depth", "layer0.kernel")
    assert toy.canonical({}) == toy.canonical({"depth": 1, "layer1.kernel": 5})
    with pytest.raises(InvalidArchitectureError, match=r"\['layer1.kernel'\].*not asked"):
        toy.make({"depth": 1, "layer0.kernel": 5, "layer1.kernel": 5})


def test_sample_mutate_and_neighbours_return_canonical_architectures():
    space = DefineByRunSpace(nested, (1,), 2)
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert space.is_valid(arch) and space.is_valid(child)
        assert child != arch  # an active decision changed, so the model did
        for neighbour in space.neighbours(arch):
            assert space.is_valid(neighbour) and neighbour != arch


def test_sampling_gives_each_option_of_a_decision_equal_weight(toy):
    rng = np.random.default_rng(1)
    depths = [toy.sample(rng)["depth"] for _ in range(400)]
    assert 0.4 < depths.count(1) / 400 < 0.6  # not 2/6 as uniform over models would give


def test_neighbours_change_one_active_decision(toy):
    arch = toy.canonical({"depth": 1, "layer0.kernel": 3})
    assert {tuple(a.values()) for a in toy.neighbours(arch)} == {(2, 3, 3), (1, 5, 3)}


def test_build_follows_the_architecture(toy):
    arch = toy.make({"depth": 2, "layer0.kernel": 5, "layer1.kernel": 3})
    model = toy.build(arch, (1, 8, 8), 3)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(5, 5), (3, 3)]
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_build_rejects_a_label_that_discovery_did_not_find():
    space = DefineByRunSpace(shape_dependent, (1, 8, 8), 2)
    arch = space.canonical({})
    with pytest.raises(InvalidArchitectureError, match="'big.extra'.*does not know"):
        space.build(arch, (1, 16, 16), 2)


def test_fixed_choices_rebuild_a_model_without_the_space(toy):
    arch = toy.make({"depth": 2, "layer0.kernel": 3, "layer1.kernel": 5})
    with fixed_choices(arch):
        model = ToyCNN((1, 8, 8), 3)
    assert [m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d)] == [(3, 3), (5, 5)]
    with (
        pytest.raises(InvalidArchitectureError, match="'layer0.kernel'.*lacks"),
        fixed_choices({"depth": 1}),
    ):
        ToyCNN((1, 8, 8), 3)


def test_architectures_round_trip_through_json_and_strings(toy):
    for arch in toy.enumerate():
        assert toy.from_string(toy.to_string(arch)) == arch
        assert toy.from_json(json.loads(json.dumps(toy.to_json(arch)))) == arch


def test_encoding_zeroes_inactive_decisions(toy):
    vector = toy.encode(toy.canonical({"depth": 1}))
    assert vector.tolist() == [1, 0, 1, 0, 0, 0]


def test_one_label_with_two_sets_of_options_is_an_error():
    def clash(input_shape, num_classes):
        choice("k", [3, 5])
        if choice("depth", [1, 2]) == 2:
            choice("k", [3, 7])
        return nn.Linear(1, 1)

    with pytest.raises(InvalidArchitectureError, match=r"'k' is asked with choices \[3, 7\]"):
        DefineByRunSpace(clash, (1,), 2)


@pytest.mark.parametrize(
    "options, message",
    [("abc", "needs a list"), ([nn.ReLU], "not str, int"), ([1, 1], "repeats"), ([], "no options")],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ArchsearchError, match=message):
        choice("x", options)


def test_a_factory_that_needs_real_tensors_is_probed_on_cpu():
    space = DefineByRunSpace(needs_real_tensors, (1,), 2)
    assert space.size() == 2 and not space._meta_ok


def test_config_rebuilds_an_equal_space_from_an_importable_factory(toy):
    config = toy.config()
    assert config == {
        "name": "define-by-run",
        "factory": f"{ToyCNN.__module__}:ToyCNN",
        "input_shape": [1, 8, 8],
        "num_classes": 3,
    }
    again = build_space(json.loads(json.dumps(config)))
    assert again.decisions == toy.decisions and again.config() == config
    assert (
        make_space("define-by-run", **{k: v for k, v in config.items() if k != "name"}).size() == 6
    )


def test_a_factory_that_cannot_be_imported_fails_clearly_on_rebuild():
    space = DefineByRunSpace(lambda shape, n: ToyCNN(shape, n), (1, 8, 8), 3)
    config = space.config()
    assert config["factory"].startswith("<not importable>")
    with pytest.raises(ArchsearchError, match="cannot import.*module level"):
        build_space(config)
    with pytest.raises(ArchsearchError, match="no 'Missing'"):
        DefineByRunSpace(f"{__name__}:Missing", (1,), 2)


class CountParameters(Evaluator):
    """A fake evaluator: builds the model and scores its parameter count."""

    name = "count-parameters"

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        model = space.build(arch, space.input_shape, space.num_classes)
        return EvalResult({"objective": float(sum(p.numel() for p in model.parameters()))})


def test_a_study_searches_a_define_by_run_space(toy):
    strategy = make_strategy("random", toy, seed=0)
    study = Study(toy, strategy, CountParameters(), budget=Budget(evaluations=6))
    best = study.optimize()
    archs = [toy.from_json(t.arch_json) for t in study.trials]
    assert len(set(archs)) == 6  # random search without repeats covers all six models
    assert study.best_arch().to_dict() == {"depth": 2, "layer0.kernel": 5, "layer1.kernel": 5}
    assert best.status == "complete"
