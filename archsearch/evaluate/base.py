"""The evaluator contract: how a candidate architecture is scored.

An evaluator turns an architecture into an :class:`EvalResult`. It never knows which strategy
asked; the study calls it, stores the result and tells the strategy the objective.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from archsearch.registry import Registry
from archsearch.space.base import Architecture, SearchSpace


@dataclass
class EvalResult:
    """The outcome of one evaluation.

    ``objective`` is what the search maximises (validation accuracy); ``reported`` is what a
    paper reports (test accuracy) and is never shown to a strategy. ``metrics`` holds
    everything else worth storing (loss, seconds, #params, FLOPs). ``model`` optionally
    carries the trained network so that a study can keep the best one's weights; it is not
    stored in the database.
    """

    objective: float
    reported: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    model: Any = None

    @property
    def failed(self) -> bool:
        values = [self.objective, self.metrics.get("loss", 0.0)]
        return any(v is None or not math.isfinite(float(v)) for v in values)


class Evaluator(ABC):
    """Scores architectures. Subclasses document their objective and reported metric."""

    name: str = "evaluator"
    #: names of the objective and reported metric, as stored in a study
    objective_name: str = "objective"
    reported_name: str | None = None
    #: multi-fidelity strategies may pass ``fidelity`` (e.g. epochs) when this is True
    supports_fidelity: bool = False

    def check_space(self, space: SearchSpace) -> None:  # noqa: B027 (optional hook)
        """Raise :class:`~archsearch.errors.ArchsearchError` if ``space`` cannot be scored."""

    @abstractmethod
    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        """Score one architecture; may raise, which the study records as a failure.

        ``time_limit``: seconds the study has left (``None``: no limit); an evaluator that
        trains stops at an epoch boundary once it is spent and reports the epochs it trained.
        """

    def config(self) -> dict[str, Any]:
        """What the evaluator registry needs to construct this evaluator again."""
        return {"name": self.name}


EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator")
