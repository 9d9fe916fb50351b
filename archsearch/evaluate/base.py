"""The evaluator contract: how a candidate architecture is scored.

An evaluator turns an architecture into an :class:`EvalResult`: a mapping of *named values*
(``valid_accuracy``, ``test_accuracy``, ``loss``, ``params``, ``flops``, ``train_seconds``,
...). It never knows which strategy asked, nor which of its values the study treats as
objectives, constraints or the reported figure: the study declares those (see
:mod:`archsearch.study.objectives`), stores every value, and tells the strategy only the
objective vector. One evaluator thus serves a single-objective search, a constrained one and
a multi-objective one alike.

Contract, which every implementation keeps:

* **Determinism per seed.** ``evaluate(arch, space, seed=s)`` returns the same values for the
  same architecture, seed, options and machine (timings excepted: values whose names end in
  ``_seconds`` or ``_ms`` measure the machine, not the architecture).
* **Errors.** An :class:`~archsearch.errors.ArchsearchError` means the *configuration* is
  wrong (an unknown dataset, a table that lacks a column): the study stops and says so. Any
  other exception means *this candidate* failed (it diverged, ran out of memory, has no row
  in a table): the study records the trial as failed with the exception's message and goes
  on. A value that is NaN or infinite fails the trial too.
* **Fidelity.** ``fidelity`` is the evaluator's unit of effort (epochs for the training
  evaluator) or ``None`` for its full budget; evaluators with ``supports_fidelity = False``
  ignore it.
* **Time.** ``time_limit`` is how many seconds the study has left; an evaluator that trains
  stops at an epoch boundary once it is spent and reports the epochs it trained. Evaluators
  that cost milliseconds ignore it.
* **Defaults.** ``objective_name`` (with ``objective_direction``) and ``reported_name`` are
  what a study optimises and reports when it declares nothing else.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archsearch.configurable import Configurable
from archsearch.registry import Registry
from archsearch.space.base import Architecture, SearchSpace


@dataclass
class EvalResult:
    """The outcome of one evaluation: every named value it measured.

    ``model`` optionally carries the trained network so that a study can keep the best
    one's weights; it is not stored in the database.
    """

    values: dict[str, float] = field(default_factory=dict)
    model: Any = None

    def get(self, name: str) -> float | None:
        return self.values.get(name)

    @property
    def diverged(self) -> bool:
        """True when training reported a non-finite loss: the candidate failed."""
        loss = self.values.get("loss")
        return loss is not None and not math.isfinite(float(loss))


class Evaluator(Configurable, ABC):
    """Scores architectures; see the module docstring for the contract."""

    name: str = "evaluator"
    #: the value a study optimises when it declares no objective, and its direction
    objective_name: str = "objective"
    objective_direction: str = "max"
    #: the value a study reports (never shown to a strategy) when it declares none
    reported_name: str | None = None
    #: multi-fidelity strategies may pass ``fidelity`` (e.g. epochs) when this is True
    supports_fidelity: bool = False
    #: True when results carry a trained model (``EvalResult.model``) worth keeping
    keeps_model: bool = False

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
        """Score one architecture; may raise (see the contract for what each error means)."""

    def value_names(self, space: SearchSpace) -> frozenset[str] | None:  # noqa: B027
        """The names every result on ``space`` carries, when they are known before evaluating
        (a table's columns, a cost's two names); ``None`` when only a result tells.

        A study checks its declared objectives and constraints against them when it is
        built, so that a misspelt name is refused before anything is written.
        """
        return None

    def cheap_values(self, arch: Architecture, space: SearchSpace) -> Mapping[str, float]:
        """The values of ``arch`` this evaluator knows without evaluating it: costs a table
        stores or a network's counts, in milliseconds, never a trained accuracy.

        A study checks its hard constraints on them *before* an evaluation, so that an
        architecture outside the budget is never trained, is recorded as infeasible and
        costs no evaluation. The values must equal those :meth:`evaluate` reports. An
        architecture whose values cannot be had this way (a table without its row) gets
        ``{}``, not an error: its evaluation then fails, or succeeds, as it would have.
        """
        return {}

    def config(self) -> dict[str, Any]:
        """What the evaluator registry needs to construct this evaluator again: its name and
        constructor arguments (:mod:`archsearch.configurable`)."""
        return {"name": self.name, **self.init_options()}


EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator")
