"""Search the architecture of your own CNN, on your own tensors.

The model below is ordinary PyTorch: its constructor asks ``choice(label, options)`` for
each decision (depth, kernel and width per layer, which earlier tensor feeds a layer, the
pooling). archsearch discovers those decisions by running the constructor, searches them
with regularized evolution, training each candidate on the user's tensors, and rebuilds
the best model. The data is scikit-learn's 8x8 digits, turned into tensors as a user's own
data would be. Runs in well under a minute on
a laptop CPU:

    python examples/user_cnn.py
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from archsearch.data import ImageData, from_tensors
from archsearch.evaluate.train import TrainingEvaluator
from archsearch.space import DefineByRunSpace, choice
from archsearch.strategy import make_strategy
from archsearch.study import Budget, Study

SEED = 0


class UserCNN(nn.Module):
    """A small CNN whose shape is left to the search.

    Tensor 0 is the stem's output and tensor ``j`` the output of layer ``j - 1``; layer ``i``
    reads any earlier tensor, so the search can also find skip-style wirings. With 1-3
    layers, this is 840 distinct models (``space.size()``).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
        )
        widths = [16]  # channels of each tensor, in the order they are made
        self.sources: list[int] = []
        self.layers = nn.ModuleList()
        for i in range(choice("depth", [1, 2, 3])):
            kernel = choice(f"layer{i}.kernel", [3, 5])
            width = choice(f"layer{i}.width", [16, 32])
            source = choice(f"layer{i}.input", list(range(i + 1)))
            self.layers.append(
                nn.Sequential(
                    nn.Conv2d(widths[source], width, kernel, padding=kernel // 2, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                )
            )
            self.sources.append(source)
            widths.append(width)
        pooling = choice("pool", ["avg", "max"])
        self.pool = nn.AdaptiveAvgPool2d(1) if pooling == "avg" else nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = [self.stem(x)]
        for source, layer in zip(self.sources, self.layers, strict=True):
            tensors.append(layer(tensors[source]))
        return self.head(self.pool(tensors[-1]).flatten(1))


def user_data() -> ImageData:
    """The user's own tensors: 1,797 8x8 digit images, 1,397 to train on and 400 to test.

    ``from_tensors`` standardises the images with the training set's statistics; the
    evaluator then carves its validation images out of the training tensors.
    """
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)  # (N, 1, 8, 8), 0..16
    y = torch.tensor(digits.target)
    order = torch.from_numpy(np.random.default_rng(SEED).permutation(len(y)))
    x, y = x[order], y[order]
    return from_tensors(x[:1397], y[:1397], x[1397:], y[1397:], name="my-digits")


def main() -> None:
    started = time.perf_counter()
    # UserCNN lives in __main__ here, which a new process cannot import, so this study stays
    # in memory. For a study stored in a directory and resumed later, define the model in an
    # importable module (or pass factory="package.module:UserCNN").
    space = DefineByRunSpace(UserCNN, input_shape=(1, 8, 8), num_classes=10)
    print(f"discovered {len(space.decisions)} decisions, {space.size()} distinct models:")
    for decision in space.decisions:
        print(f"  {decision.label:<14} {list(decision.choices)}")

    strategy = make_strategy("evolution", space, seed=SEED, population_size=4, sample_size=2)
    # Adam for 4 epochs on 1,117 training images; 20% of the training tensors validate.
    evaluator = TrainingEvaluator(
        data=user_data(), epochs=4, optimizer="adam", lr=3e-3, valid_size=0.2, train_size=None
    )
    study = Study(space, strategy, evaluator, budget=Budget(evaluations=8), seed=SEED)
    study.optimize()

    for trial in study.trials:
        print(f"trial {trial.number}: valid {trial.objective:.1f}%  {trial.arch}")
    best = study.best
    print(f"best: trial {best.number}, valid {best.objective:.1f}%, test {best.reported:.1f}%")
    arch = study.best_arch()
    print("best architecture (active decisions):")
    for label in space.active(arch):
        print(f"  {label} = {arch[label]!r}")
    print(space.build(arch, space.input_shape, space.num_classes))
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
