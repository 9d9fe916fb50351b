"""The predictor contract: learn ``architecture -> score`` from a few evaluated architectures.

A performance predictor replaces evaluations that cost GPU-hours by a model fitted on those
already done (White et al., "How Powerful are Performance Predictors in NAS?", NeurIPS 2021).
Search mostly needs the predictor to *order* candidates well, so the ranking diagnostics of
:mod:`archsearch.diagnostics` are how predictors are judged.

Contract, which every implementation keeps:

* ``fit(archs, scores)`` learns from scratch on exactly these pairs (a second ``fit``
  forgets the first); scores are "higher is better" and must be finite (a strategy leaves
  failed evaluations out).
* ``predict(archs)`` returns one score per architecture; with ``return_std=True`` also a
  standard deviation, for predictors that have one (``has_std``). With the ``mse`` loss
  scores are on the scale of the training scores; with the ``ranking`` loss only their
  order means something.
* **Determinism.** The same seed, options and data give the same predictions. Randomness
  comes from the seed alone; global random state (NumPy's, torch's) is neither read nor
  changed, and neither is torch's thread count.
* **Every space.** Predictors read architectures through :mod:`archsearch.space.encodings`,
  so one configured for graph encodings still runs on a space without graphs (one-hot).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.configurable import Configurable
from archsearch.errors import ArchsearchError
from archsearch.registry import Registry
from archsearch.space.base import Architecture, SearchSpace
from archsearch.space.encodings import encode_batch, resolve_kind

LOSSES: tuple[str, ...] = ("mse", "ranking")


class Predictor(Configurable, ABC):
    """Base class of performance predictors; see the module docstring for the contract."""

    name: str = "predictor"
    not_options = ("space", "seed")
    #: whether ``predict(..., return_std=True)`` is available
    has_std: bool = False
    #: the training losses this predictor accepts
    losses: tuple[str, ...] = ("mse",)

    def __init__(self, space: SearchSpace, *, seed: int = 0, loss: str = "mse") -> None:
        if loss not in self.losses:
            raise ArchsearchError(
                f"predictor {self.name!r} does not train with loss {loss!r}; "
                f"its losses: {list(self.losses)} (all known: {list(LOSSES)})"
            )
        self.space = space
        self.seed = int(seed)
        self.loss = loss
        self.fitted = False

    def fit(self, archs: Sequence[Architecture], scores: Sequence[float]) -> Predictor:
        """Learn from evaluated architectures (replacing anything learned before)."""
        archs = list(archs)
        y = np.asarray(scores, dtype=np.float64)
        if y.shape != (len(archs),):
            raise ArchsearchError(
                f"fit needs one score per architecture, got {len(archs)} archs and "
                f"scores of shape {y.shape}"
            )
        if len(archs) < 2:
            raise ArchsearchError(f"fit needs at least 2 architectures, got {len(archs)}")
        bad = np.flatnonzero(~np.isfinite(y))
        if bad.size:
            raise ArchsearchError(
                f"scores must be finite; score {float(y[bad[0]])!r} at position {int(bad[0])}"
                " is not (leave failed evaluations out)"
            )
        self._fit(archs, y)
        self.fitted = True
        return self

    def partial_fit(
        self, archs: Sequence[Architecture], scores: Sequence[float], steps: int
    ) -> Predictor:
        """Refresh a fitted model with ``archs``/``scores`` (all data, old and new) cheaply.

        Neural predictors continue training their current weights for ``steps`` updates
        (a warm start, as a search refits after every few results); the others, and any
        predictor not fitted yet, simply :meth:`fit`. Deterministic like ``fit``.
        """
        if not self.fitted or not hasattr(self, "_partial_fit"):
            return self.fit(archs, scores)
        archs = list(archs)
        y = np.asarray(scores, dtype=np.float64)
        if y.shape != (len(archs),) or not np.isfinite(y).all() or len(archs) < 2:
            return self.fit(archs, y)  # let fit name the problem
        self._partial_fit(archs, y, steps)
        return self

    def predict(
        self, archs: Sequence[Architecture], return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted scores (and their standard deviations with ``return_std``)."""
        if not self.fitted:
            raise ArchsearchError(f"predictor {self.name!r} must be fitted before predict")
        if return_std and not self.has_std:
            raise ArchsearchError(
                f"predictor {self.name!r} has no standard deviation; predictors with one: "
                f"{[n for n in PREDICTORS.names() if PREDICTORS.get(n).has_std]}"
            )
        archs = list(archs)
        if not archs:
            empty = np.zeros(0)
            return (empty, empty) if return_std else empty
        mean, std = self._predict(archs)
        return (mean, std) if return_std else mean

    @abstractmethod
    def _fit(self, archs: list[Architecture], y: np.ndarray) -> None:
        """Fit on validated data."""

    @abstractmethod
    def _predict(self, archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean and standard deviation (None where the model has none)."""

    def options(self) -> dict[str, Any]:
        """Constructor options besides space and seed (:mod:`archsearch.configurable`)."""
        return self.init_options()


class FeaturePredictor(Predictor):
    """A predictor that reads a fixed encoding vector (one-hot, adjacency or path).

    Graph encodings fall back to one-hot on spaces without cell graphs, so the same
    configuration runs everywhere; ``self.encoding`` holds the one really used.
    """

    def __init__(
        self, space: SearchSpace, *, seed: int = 0, loss: str = "mse", encoding: str = "path"
    ) -> None:
        super().__init__(space, seed=seed, loss=loss)
        self.requested_encoding = encoding
        self.encoding = resolve_kind(space, encoding)

    def features(self, archs: Sequence[Architecture]) -> np.ndarray:
        return encode_batch(self.space, archs, self.encoding)


PREDICTORS: Registry[type[Predictor]] = Registry("predictor")


def standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Zero-mean, unit-variance targets and the shift and scale to undo it."""
    shift = float(np.mean(y))
    scale = float(np.std(y)) or 1.0
    return (y - shift) / scale, shift, scale
