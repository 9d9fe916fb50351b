"""The training evaluator: search on validation, report test, deterministic, fails cleanly."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.components import build_evaluator
from archsearch.data import load_dataset
from archsearch.errors import ArchsearchError, UnknownComponentError
from archsearch.evaluate import EVALUATORS
from archsearch.evaluate.train import (
    SCHEDULES,
    Recipe,
    TrainingEvaluator,
    accuracy,
    train_model,
)
from archsearch.space.base import Decision, SearchSpace
from archsearch.space.nb201 import NB201Space
from archsearch.strategy import make_strategy
from archsearch.study import Budget, Study

CONV_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
)


class TinyMLP(SearchSpace):
    """Flatten, one hidden layer of 8 or 16 units: trains in milliseconds."""

    name = "tiny-mlp"

    def __init__(self) -> None:
        super().__init__([Decision("hidden", (8, 16))])

    def build(self, arch, input_shape, num_classes):
        features = math.prod(input_shape)
        hidden = int(arch["hidden"])
        return nn.Sequential(
            nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these networks are too small to share, and on a loaded machine
    OpenMP threads spin-waiting for each other make training many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def mlp():
    space = TinyMLP()
    return space, space.make({"hidden": 16})


def fast(digits, **options) -> TrainingEvaluator:
    """A training evaluator on digits sized for tests."""
    options = {"epochs": 3, "batch_size": 32, "train_size": None, "valid_size": 200, **options}
    return TrainingEvaluator(data=digits, **options)


@pytest.mark.slow
def test_training_a_small_nb201_network_on_digits_is_far_above_chance(digits):
    space = NB201Space(channels=4, cells_per_stage=1)
    arch = space.from_string(CONV_CELL)
    result = fast(digits, epochs=2).evaluate(arch, space, seed=0)
    assert result.values["valid_accuracy"] > 80  # chance is 10%; 98% was measured
    assert result.values["test_accuracy"] > 80
    assert set(result.values) >= {
        "loss", "valid_loss", "train_seconds", "params", "flops", "epochs", "train_images"
    }  # fmt: skip
    assert result.values["params"] == sum(p.numel() for p in result.model.parameters())
    assert result.values["flops"] > 0 and result.values["epochs"] == 2
    assert result.values["train_images"] == 1437 - 200
    assert not result.model.training and next(result.model.parameters()).device.type == "cpu"


def test_the_objective_is_validation_accuracy_and_the_reported_figure_is_test_accuracy(digits, mlp):
    space, arch = mlp
    evaluator = fast(digits)
    result = evaluator.evaluate(arch, space, seed=0)
    data = evaluator.data
    assert len(data.y_valid) == 200 and len(data.y_test) == 360
    valid, test = result.values["valid_accuracy"], result.values["test_accuracy"]
    assert valid == pytest.approx(accuracy(result.model, data.x_valid, data.y_valid)[0])
    assert test == pytest.approx(accuracy(result.model, data.x_test, data.y_test)[0])


def test_the_test_set_never_influences_training(digits, mlp):
    space, arch = mlp
    scrambled = replace(digits, y_test=torch.roll(digits.y_test, 1), x_test=-digits.x_test)
    a = fast(digits).evaluate(arch, space, seed=5)
    b = fast(scrambled).evaluate(arch, space, seed=5)
    assert a.values["valid_accuracy"] == b.values["valid_accuracy"]
    assert a.values["loss"] == b.values["loss"]
    for wa, wb in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True):
        assert torch.equal(wa, wb)
    assert a.values["test_accuracy"] != b.values["test_accuracy"]


def test_validation_images_are_never_trained_on(digits):
    evaluator = fast(digits)
    data = evaluator.data
    train = {tuple(x.flatten().tolist()) for x in data.x_train}
    valid = {tuple(x.flatten().tolist()) for x in data.x_valid}
    original = {tuple(x.flatten().tolist()) for x in digits.x_train}
    assert valid <= original and train <= original
    assert not train & valid


def test_the_same_seed_gives_the_same_result_and_another_seed_another(digits, mlp):
    space, arch = mlp
    evaluator = fast(digits)
    a, b = evaluator.evaluate(arch, space, seed=1), evaluator.evaluate(arch, space, seed=1)
    c = evaluator.evaluate(arch, space, seed=2)
    assert (a.values["valid_accuracy"], a.values["loss"]) == (
        b.values["valid_accuracy"],
        b.values["loss"],
    )
    assert a.values["loss"] != c.values["loss"]


def test_evaluating_leaves_the_callers_random_state_alone(digits, mlp):
    space, arch = mlp
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fast(digits).evaluate(arch, space, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_fidelity_sets_the_number_of_epochs(digits, mlp):
    space, arch = mlp
    evaluator = fast(digits, epochs=3)
    assert evaluator.supports_fidelity
    assert evaluator.evaluate(arch, space, seed=0).values["epochs"] == 3
    assert evaluator.evaluate(arch, space, seed=0, fidelity=1).values["epochs"] == 1
    half = evaluator.evaluate(arch, space, seed=0, fidelity=0.5).values["epochs"]
    assert half == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ArchsearchError, match="fidelity"):
        evaluator.evaluate(arch, space, seed=0, fidelity=0)


def test_a_diverging_loss_stops_training_and_fails_the_evaluation(digits, mlp):
    space, arch = mlp
    result = fast(digits, lr=1e30, epochs=20).evaluate(arch, space, seed=0)
    assert math.isnan(result.values["valid_accuracy"]) and result.diverged
    assert result.model is None
    assert result.values["epochs"] < 20  # stopped early


def test_every_optimizer_and_schedule_trains(digits, mlp):
    space, arch = mlp
    for optimizer, lr in (("sgd", 0.05), ("adam", 3e-3), ("adamw", 3e-3)):
        for schedule in SCHEDULES:
            evaluator = fast(digits, optimizer=optimizer, lr=lr, schedule=schedule, epochs=2)
            result = evaluator.evaluate(arch, space, seed=0)
            assert result.values["valid_accuracy"] > 50, (optimizer, schedule)


def test_schedules_decay_as_documented():
    assert SCHEDULES["cosine"](0.0) == 1.0 and SCHEDULES["cosine"](0.5) == pytest.approx(0.5)
    assert SCHEDULES["constant"](0.9) == 1.0
    assert [SCHEDULES["step"](p) for p in (0.0, 0.5, 0.8)] == pytest.approx([1, 0.1, 0.01])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; optimizers: sgd, adam, adamw"),
        ({"schedule": "linear"}, "unknown schedule 'linear'; schedules: cosine, constant, step"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"epochs": 0}, "epochs must be > 0"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr must be > 0"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"train_size": 0}, "train_size"),
        ({"valid_size": 5000}, "valid_size 5000"),
    ],
)
def test_bad_options_fail_with_the_accepted_values(digits, options, message):
    with pytest.raises(ArchsearchError, match=message.replace("(", "\\(")):
        fast(digits, **options)


def test_an_unknown_dataset_fails_when_the_evaluator_is_built():
    with pytest.raises(UnknownComponentError, match="known datasets: digits, fashion-mnist"):
        TrainingEvaluator(dataset="cifar10")


def test_the_configuration_rebuilds_the_same_evaluator():
    evaluator = TrainingEvaluator(dataset="digits", epochs=1, train_size=500, valid_size=100)
    config = evaluator.config()
    assert EVALUATORS.get("train") is TrainingEvaluator and config["name"] == "train"
    rebuilt = build_evaluator(config)
    assert rebuilt.config() == config
    assert torch.equal(rebuilt.data.x_valid, evaluator.data.x_valid)
    assert len(rebuilt.data.y_train) == 500


def test_user_data_is_marked_in_the_configuration_and_a_rebuilt_evaluator_asks_for_it(digits):
    config = fast(digits).config()
    assert config["data"] == "user-data:digits"
    rebuilt = build_evaluator(config)
    assert rebuilt.config() == config
    with pytest.raises(ArchsearchError, match="TrainingEvaluator\\(data=...\\)"):
        rebuilt.data  # noqa: B018


def test_train_model_trains_any_module_with_a_recipe(digits):
    evaluator = fast(digits)
    data = evaluator.data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    before = accuracy(model, data.x_valid, data.y_valid)[0]
    log = train_model(model, data, Recipe(epochs=2, batch_size=32, lr=0.05), seed=0)
    assert log.steps == 2 * (len(data.y_train) // 32) and log.images == 32 * log.steps
    assert not log.diverged and log.seconds > 0
    assert accuracy(model, data.x_valid, data.y_valid)[0] > max(before, 70)


@pytest.mark.slow
def test_a_study_with_the_training_evaluator_keeps_the_best_weights(digits, tmp_path):
    space = NB201Space(channels=4, cells_per_stage=1)
    strategy = make_strategy("random", space, seed=0)
    evaluator = fast(digits, epochs=1)
    study = Study(space, strategy, evaluator, budget=Budget(evaluations=2), directory=tmp_path)
    best = study.optimize()
    assert best is not None and [t.status for t in study.trials] == ["complete"] * 2
    stored = torch.load(tmp_path / "best_weights.pt", weights_only=True)
    assert stored["trial"] == best.number
    model = space.build(study.best_arch(), evaluator.data.input_shape, 10)
    model.load_state_dict(stored["state_dict"])  # the kept weights fit the architecture
    assert np.isfinite(best.reported)


def test_the_shared_step_backpropagates_each_loss_before_computing_the_next_and_clips():
    from archsearch.training import batches, optimizer_step

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    x = torch.randn(4, 3)
    events = []

    def losses():
        for k in range(2):
            events.append(("forward", k, model.weight.grad is None))
            yield model(x * (k + 1)).pow(2).sum()
            events.append(("after backward", k, model.weight.grad is not None))

    before = [p.detach().clone() for p in model.parameters()]
    done = optimizer_step(optimizer, losses(), clip=1e-3)
    assert len(done) == 2 and not any(loss.requires_grad for loss in done)
    # the gradient starts at None and is there after the first backward, before forward 2
    assert events == [("forward", 0, True), ("after backward", 0, True),
                      ("forward", 1, False), ("after backward", 1, True)]  # fmt: skip
    with torch.no_grad():
        after = list(model.parameters())
        update = torch.cat([(b - a).flatten() for b, a in zip(before, after, strict=True)])
    assert float(update.norm()) == pytest.approx(1e-3, rel=1e-4)  # lr 1: clipped grad
    # a callable is one loss; the batches are one randperm of the generator per epoch
    (loss,) = optimizer_step(optimizer, lambda: model(x).sum())
    assert loss.shape == ()
    y = torch.arange(10)
    got = torch.cat([yb for _, yb in batches(y.float(), y, 3, torch.Generator().manual_seed(5))])
    assert torch.equal(got, torch.randperm(10, generator=torch.Generator().manual_seed(5))[:9])
