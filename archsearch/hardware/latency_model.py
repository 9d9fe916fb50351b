"""A learned latency model: a performance predictor trained on measured networks.

The lookup table sums operations measured alone; it cannot see what happens between them
(an operator's output still in cache for the next, a runtime fusing two, a cell's Python
overhead). A model trained on a few hundred networks measured whole sees all of it, as the
Latency-aware DNAS and HELP papers train theirs. Any of archsearch's predictors serves; the
default is the Gaussian process on the one-hot encoding, because a latency is nearly a sum
of per-choice costs, which a GP on one-hot features learns from a hundred networks (its
kernel's length-scales make it close to linear), while a GBDT's axis-aligned splits need
many more to approximate a sum of 30 features (on a noiseless additive latency over
NAS-Bench-201 with 150 training networks, ``tests/test_latency_models.py`` requires the GP
under 1% error and finds LightGBM over 5%). ``log_target`` fits the logarithm instead, for latencies
spanning orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only: hardware must not import space (no import cycle)
    from archsearch.space.base import Architecture, SearchSpace


class LatencyPredictor:
    """Predicts milliseconds from an architecture; see the module docstring."""

    def __init__(
        self,
        space: SearchSpace,
        predictor: str = "gp",
        options: Mapping[str, Any] | None = None,
        seed: int = 0,
        log_target: bool = False,
    ) -> None:
        from archsearch.predict.base import PREDICTORS

        self.space = space
        options = {"encoding": "onehot"} if options is None else dict(options)
        self.model = PREDICTORS.get(predictor)(space, seed=seed, **options)
        self.log_target = log_target

    def fit(self, archs: Sequence[Architecture], latency_ms: Sequence[float]) -> LatencyPredictor:
        y = np.asarray(latency_ms, dtype=float)
        if len(archs) != len(y) or not len(y) or np.any(y <= 0):
            raise ValueError("fit needs one positive latency per architecture")
        self.model.fit(list(archs), np.log(y) if self.log_target else y)
        return self

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        predicted = np.asarray(self.model.predict(list(archs)), dtype=float)
        return np.exp(predicted) if self.log_target else predicted


def latency_errors(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """How well a latency model does on held-out measured networks: the mean absolute
    percentage error and Kendall's tau (``scipy.stats.kendalltau``, tau-b)."""
    from scipy.stats import kendalltau

    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    return {
        "mape_percent": float(np.mean(np.abs(p - m) / m) * 100),
        "kendall": float(kendalltau(p, m)[0]),
        "networks": len(m),
    }
