"""What travels between a study and its workers: the job, how to build its evaluator, and
the outcome.

A worker receives a *recipe* once (how to rebuild the study's space and evaluator) and then
jobs (one trial each: the architecture as JSON, the trial's seed, fidelity and time limit);
it sends back an outcome. Only the study process writes the study: a worker never sees the
storage, so a worker that dies can lose nothing but the trial it was evaluating.

The recipe is the configuration sections of the space and the evaluator when both are
registered components: a worker then builds them through the registries, importing only
their modules (a table evaluator's worker never imports torch), and loads the evaluator's
data itself rather than receiving a copy through a pipe. Components a user made without
registering them travel pickled instead.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.space.base import Architecture, SearchSpace


@dataclass(frozen=True)
class Job:
    """One evaluation: trial ``key`` of the study, its architecture and settings."""

    key: int
    arch_json: dict[str, Any]
    seed: int
    fidelity: float | None = None
    time_limit: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of a job.

    ``status`` is ``done`` (the evaluator returned ``result``, or raised: ``error`` says
    what, and the trial failed), ``fatal`` (a configuration error, which stops the study as
    it does in a sequential run), ``lost`` (the worker died: killed, out of memory, its node
    gone; ``error`` says how, and the study may retry the trial) or ``timeout`` (it ran past
    the trial timeout and was cancelled).
    """

    key: int
    status: str
    result: EvalResult | None = None
    error: str | None = None


@dataclass(frozen=True)
class Recipe:
    """How a worker rebuilds the study's space and evaluator (see the module docstring)."""

    space: Mapping[str, Any] | None = None
    evaluator: Mapping[str, Any] | None = None
    pickled: bytes | None = None

    @classmethod
    def of(cls, space: SearchSpace, evaluator: Evaluator, config: Mapping[str, Any]) -> Recipe:
        """The configuration sections when they rebuild these very classes, else a pickle."""
        from archsearch.evaluate.base import EVALUATORS
        from archsearch.space.registry import SPACES

        sections = config.get("space"), config.get("evaluator")
        if all(isinstance(s, Mapping) and isinstance(s.get("name"), str) for s in sections):
            space_cls = _registered(SPACES, sections[0]["name"])
            evaluator_cls = _registered(EVALUATORS, sections[1]["name"])
            if space_cls is type(space) and evaluator_cls is type(evaluator):
                return cls(space=dict(sections[0]), evaluator=dict(sections[1]))
        try:
            return cls(pickled=pickle.dumps((space, evaluator)))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ArchsearchError(
                f"the space and evaluator cannot be sent to worker processes: register them "
                f"(archsearch.space.registry.SPACES, archsearch.evaluate.base.EVALUATORS) or "
                f"make them picklable ({exc})"
            ) from None

    def build(self) -> tuple[SearchSpace, Evaluator]:
        if self.pickled is not None:
            return pickle.loads(self.pickled)
        from archsearch.build import build_evaluator, build_space

        space = build_space(self.space)
        evaluator = build_evaluator(self.evaluator)
        evaluator.check_space(space)
        return space, evaluator


def _registered(registry: Any, name: str) -> type | None:
    try:
        return registry.get(name)
    except ArchsearchError:
        return None


def evaluate(
    evaluator: Evaluator,
    space: SearchSpace,
    arch: Architecture,
    *,
    seed: int,
    fidelity: float | None = None,
    time_limit: float | None = None,
) -> tuple[EvalResult | None, str | None]:
    """Evaluate one architecture as a study does: an exception is the candidate's failure,
    returned as a one-line reason; an :class:`ArchsearchError` (a bad configuration, not a
    bad architecture) propagates and stops the study."""
    try:
        result = evaluator.evaluate(
            arch, space, seed=seed, fidelity=fidelity, time_limit=time_limit
        )
    except ArchsearchError:
        raise
    except Exception as exc:  # noqa: BLE001  (any failure of one candidate is recorded)
        return None, traceback.format_exception_only(type(exc), exc)[-1].strip()
    return result, None


def run_job(space: SearchSpace, evaluator: Evaluator, job: Job) -> Outcome:
    """Evaluate ``job`` in a worker, every failure turned into an outcome."""
    try:
        arch = space.from_json(job.arch_json)
        result, error = evaluate(
            evaluator, space, arch, seed=job.seed, fidelity=job.fidelity,
            time_limit=job.time_limit,
        )  # fmt: skip
    except ArchsearchError as exc:
        return Outcome(job.key, "fatal", error=str(exc))
    return Outcome(job.key, "done", result, error)
