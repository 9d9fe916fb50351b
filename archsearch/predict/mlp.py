"""An ensemble of MLPs: BANANAS' predictor (White et al., AAAI 2021, sec. 4).

Several fully connected networks, differing only in initialisation, are trained on the same
encodings; their mean is the prediction and their spread the uncertainty that BANANAS'
acquisition needs (an ensemble is a cheap, well-calibrated-enough alternative to a Bayesian
network: Lakshminarayanan et al., NeurIPS 2017). The members are trained together as one
batched network (one ``bmm`` per layer), which keeps a refit per search step cheap on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.predict.base import PREDICTORS, FeaturePredictor
from archsearch.predict.training import GradientTrained, single_thread
from archsearch.space.base import Architecture, SearchSpace


class BatchedMLP(nn.Module):
    """``members`` independent MLPs evaluated at once: ``(N, F) -> (members, N)``."""

    def __init__(self, members: int, sizes: Sequence[int]) -> None:
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
            self.weights.append(nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(
                -bound, bound)))  # fmt: skip
            self.biases.append(nn.Parameter(torch.empty(members, 1, fan_out).uniform_(
                -bound, bound)))  # fmt: skip
        self.members = members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(0).expand(self.members, *x.shape)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if k < last:
                h = torch.relu(h)
        return h.squeeze(-1)


@PREDICTORS.register("mlp-ensemble")
class MLPEnsemble(GradientTrained, FeaturePredictor):
    """Mean and spread of ``members`` MLPs on (by default) the path encoding.

    Defaults follow BANANAS' (5 members, Adam at 0.01, 200 epochs), with 3 hidden layers of
    64 units and at most 1,000 updates, so that a fit from scratch costs about 2 s of one
    CPU core whether 100 or 1,000 architectures are known (``benchmarks/predictors.py
    --ask-overhead``).
    With the ``ranking`` loss every member is trained with GATES' pairwise hinge; the
    spread is then in the same arbitrary units as the mean.
    """

    has_std = True
    losses = ("mse", "ranking")

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        loss: str = "mse",
        encoding: str = "path",
        members: int = 5,
        hidden: Sequence[int] = (64, 64, 64),
        epochs: int = 200,
        batch_size: int = 64,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        min_steps: int = 200,
        max_steps: int | None = 1000,
    ) -> None:
        super().__init__(space, seed=seed, loss=loss, encoding=encoding)
        if members < 1 or any(h < 1 for h in hidden):
            raise ArchsearchError(
                f"need members >= 1 and hidden sizes >= 1; got {members}, {list(hidden)}"
            )
        self._init_training(epochs, batch_size, lr, weight_decay, min_steps, max_steps)
        self.members = members
        self.hidden = tuple(int(h) for h in hidden)
        self.model: BatchedMLP | None = None

    def _build(self, archs: list[Architecture]) -> None:
        self.model = BatchedMLP(self.members, (self.features(archs[:1]).shape[1], *self.hidden, 1))

    def _trainable(self, archs: list[Architecture]):
        x = torch.as_tensor(self.features(archs))
        return lambda index: self.model(x[index]), list(self.model.parameters())

    def member_predictions(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Each member's predictions, ``(members, len(archs))``, on the training scale."""
        if self.model is None:
            raise ArchsearchError(f"predictor {self.name!r} must be fitted before predict")
        with torch.no_grad(), single_thread():
            out = self.model(torch.as_tensor(self.features(archs))).double().numpy()
        return self._unstandardise(out)

    def _predict(self, archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        out = self.member_predictions(archs)
        return out.mean(axis=0), out.std(axis=0)
