"""Training is reproducible: the same seed gives the same bits in another process, whatever
thread count the process starts with, because the recipe fixes the thread count."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from archsearch.data import load_dataset
from archsearch.errors import ArchsearchError
from archsearch.evaluate.train import Recipe, TrainingEvaluator, cpu_threads, train_model
from archsearch.space.base import Decision, SearchSpace

ROOT = Path(__file__).resolve().parents[1]

# One training run in a fresh process that starts with argv[1] intra-op threads: convolution,
# BatchNorm and a linear layer, in channels-last layout on the CPU as NAS-Bench-201 networks
# train. train_model and accuracy rather than TrainingEvaluator.evaluate, whose first FLOP
# count costs seconds; the evaluator is checked to apply the recipe's threads below.
TRAIN_ONCE = r"""
import hashlib, json, sys
import torch
from torch import nn
from archsearch.data import load_dataset
from archsearch.evaluate.train import Recipe, accuracy, cpu_threads, train_model

torch.set_num_threads(int(sys.argv[1]))  # what another machine or a loaded one might give
data = load_dataset("digits")
torch.manual_seed(3)
model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
    nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, data.num_classes),
)
recipe = Recipe(epochs=1, batch_size=32, threads=json.loads(sys.argv[2]))
log = train_model(model, data, recipe, seed=3)
with cpu_threads(recipe.threads):  # as TrainingEvaluator.evaluate measures accuracy
    test_accuracy, test_loss = accuracy(model, data.x_test, data.y_test, channels_last=True)
digest = hashlib.sha256()
for name, tensor in model.state_dict().items():
    digest.update(name.encode() + tensor.contiguous().numpy().tobytes())
print(json.dumps({
    "weights": digest.hexdigest(), "loss": log.loss.hex(), "test": test_accuracy,
    "test_loss": test_loss.hex(), "threads": torch.get_num_threads(),
}))
"""


@pytest.mark.slow  # two fresh processes import torch: 5-15 s
def test_two_processes_train_the_same_bits_whatever_threads_they_start_with():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", TRAIN_ONCE, str(threads), "1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for threads in (1, 2)
    ]
    outputs = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        outputs.append(json.loads(out))
    first, second = outputs
    assert [first["threads"], second["threads"]] == [1, 2]  # the caller's setting came back
    for key in ("weights", "loss", "test", "test_loss"):
        assert first[key] == second[key], key


class Counting(nn.Module):
    """A linear model that records the intra-op thread count of every training forward."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.seen: set[int] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.add(torch.get_num_threads())
        return self.linear(x.flatten(1))


class CountingSpace(SearchSpace):
    name = "counting"

    def __init__(self) -> None:
        super().__init__([Decision("only", (0,))])
        self.built: list[Counting] = []

    def build(self, arch, input_shape, num_classes):
        self.built.append(Counting())
        return self.built[-1]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_the_recipe_sets_the_thread_count_while_training_and_gives_it_back(digits):
    before = torch.get_num_threads()
    with cpu_threads(2):
        model = Counting()
        train_model(model, digits, Recipe(epochs=1, batch_size=256), seed=0)
        assert model.seen == {1} and torch.get_num_threads() == 2
        model = Counting()
        train_model(model, digits, Recipe(epochs=1, batch_size=256, threads=None), seed=0)
        assert model.seen == {2}
    assert torch.get_num_threads() == before
    space = CountingSpace()
    evaluator = TrainingEvaluator(data=digits, epochs=1, valid_size=200, threads=2)
    assert evaluator.config()["threads"] == 2
    with cpu_threads(1):
        evaluator.evaluate(space.make({"only": 0}), space, seed=0)
        assert space.built[-1].seen == {2} and torch.get_num_threads() == 1


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_a_bad_thread_count_is_refused(threads):
    with pytest.raises(ArchsearchError, match="threads must be a positive integer or null"):
        Recipe(threads=threads)


def test_a_spent_time_limit_ends_training_after_the_first_epoch(digits):
    space = CountingSpace()
    arch = space.make({"only": 0})
    evaluator = TrainingEvaluator(
        data=digits, epochs=3, batch_size=32, train_size=None, valid_size=200
    )
    cut = evaluator.evaluate(arch, space, seed=0, time_limit=1e-6)
    assert cut.values["epochs"] == 1 and cut.values["time_limited"] == 1.0
    assert cut.values["valid_accuracy"] > 50  # a cut evaluation is still a result
    whole = evaluator.evaluate(arch, space, seed=0, time_limit=None)
    assert whole.values["epochs"] == 3 and "time_limited" not in whole.values
    roomy = evaluator.evaluate(arch, space, seed=0, time_limit=3600)
    assert roomy.values["epochs"] == 3 and roomy.values["time_limited"] == 0.0
    assert roomy.values["loss"] == whole.values["loss"]  # a limit not reached changes nothing
    half = evaluator.evaluate(arch, space, seed=0, fidelity=0.5, time_limit=1e-6)
    assert half.values["epochs"] == pytest.approx(0.5, abs=0.05)
    assert half.values["time_limited"] == 0.0  # a fraction of one epoch is never cut


def test_every_evaluator_accepts_a_time_limit():
    import inspect

    import archsearch.oneshot  # noqa: F401 (registers the supernet evaluator)
    from archsearch.evaluate import EVALUATORS

    assert "supernet" in EVALUATORS.names()
    for name in EVALUATORS.names():
        evaluate = EVALUATORS.get(name).evaluate
        assert "time_limit" in inspect.signature(evaluate).parameters, name
