"""The ask/tell contract every search strategy keeps.

A strategy proposes architectures (``ask``) and learns from their scores (``tell``); it
never evaluates anything itself and never imports torch. The study drives it.

Contract, which every implementation guarantees:

* **Parallel asks.** ``ask()`` may be called several times before any ``tell()`` (one call per
  idle worker). A strategy must then still return sensible, preferably distinct, proposals.
* **Pending proposals.** ``self.pending`` lists, in the order proposed, the architectures
  that ``propose()``/``ask()`` returned and no ``tell()`` has answered yet: the evaluations
  in flight. The base class keeps it for every strategy (each proposal method a subclass
  defines is wrapped, so an implementation does nothing for it), and strategies that
  propose from a model use it to make a batch diverse rather than ``N`` near-copies of one
  choice (model-based ones fantasise results for the pending architectures; see
  :mod:`archsearch.strategy.model_based`). Proposals count, and so does an architecture the
  study chose itself and evaluates in parallel (a screening's pick, marked by :meth:`hold`);
  a tell of an architecture that was never pending (a warm start, a replay) just records
  the result.
  A tell removes one pending entry of its architecture; one proposed twice before its
  first tell stays pending until the second. With nothing pending every strategy behaves
  exactly as a sequential search.
* **Tells in any order, failures included.** ``tell(arch, values, feasible=...)`` accepts
  results in any order, for any architecture of the space (also ones it did not propose:
  warm starts and replays use this), and ``values=None`` for an evaluation that failed.
  Failed architectures are remembered as seen but never treated as good.
* **Objective vectors.** ``values`` is the tuple of the study's objectives, the primary one
  first (a bare number is taken as a one-element tuple). Every component is "higher is
  better": the study negates a ``min`` objective (a loss, #params) before telling.
  ``feasible=False`` says the architecture breaks a declared constraint; a single-objective
  strategy treats it like a failure (seen, never good), so every strategy searches inside
  the constraints. A strategy states how many objectives it handles in ``max_objectives``
  (1 for single-objective strategies, None for any); a study refuses a mismatch.
* **Constraints known before evaluation.** A study whose hard constraints can be checked
  without evaluating (#params, FLOPs, a table's latency) sets ``admissible``, a predicate
  that is True for an architecture meeting them. Strategies that rank a pool of candidates
  by a model drop the ones it refuses *before* ranking, so that the acquisition picks the
  best feasible candidate instead of one the study would refuse. Other strategies may ignore
  it: the study refuses, records and tells what they propose outside the constraints.
* **Determinism.** Two instances built with the same space, seed and options and given the
  same sequence of ``ask``/``tell`` calls return the same proposals. All randomness comes from
  ``self.rng``.
* **Resume.** A resumed study rebuilds the strategy with the same seed and replays the stored
  trials in their original order: it calls ``ask()`` where the trial was asked and ``tell()``
  with the stored result where it was told. By determinism the strategy then reaches exactly
  the state it had when the study stopped.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from archsearch.configurable import Configurable
from archsearch.registry import Registry
from archsearch.space.base import Architecture, SearchSpace


@dataclass(frozen=True)
class Observation:
    """One told result: the oriented objective vector (None for a failed evaluation)."""

    arch: Architecture
    values: tuple[float, ...] | None
    fidelity: float | None = None
    feasible: bool = True

    @property
    def objective(self) -> float | None:
        """The primary objective, None when the evaluation failed or is infeasible: what a
        single-objective strategy ranks by."""
        return self.values[0] if self.values is not None and self.feasible else None


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _records_pending(method: _Method, *, returns_pair: bool) -> _Method:
    """``method`` (an ``ask`` or ``propose``), recording what it returns as pending.

    Proposal methods call one another (``propose`` calls ``ask``, Hyperband's ``ask`` calls
    ``propose``, a subclass calls ``super().ask()``), so only the outermost call of a
    proposal records: one proposal, one pending entry.
    """

    @functools.wraps(method)
    def wrapped(self: Strategy, *args: Any, **kwargs: Any) -> Any:
        if self._proposing:
            return method(self, *args, **kwargs)
        self._proposing = True
        try:
            result = method(self, *args, **kwargs)
        finally:
            self._proposing = False
        arch = result[0] if returns_pair else result
        self._pending[arch] = self._pending.get(arch, 0) + 1
        return result

    wrapped.__records_pending__ = True  # type: ignore[attr-defined]
    return wrapped  # type: ignore[return-value]


class Strategy(Configurable, ABC):
    """Base class of search strategies; see the module docstring for the contract."""

    name: str = "strategy"
    not_options = ("space", "seed")
    #: True for strategies whose proposals carry a fidelity (Hyperband, BOHB): they only make
    #: sense with an evaluator whose results depend on it (``Evaluator.supports_fidelity``)
    uses_fidelity: bool = False
    #: how many objectives the strategy can weigh; None: any number (random search)
    max_objectives: int | None = 1
    #: set by the study (see the module docstring); None: nothing is known before evaluation
    admissible: Callable[[Architecture], bool] | None = None

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.history: list[Observation] = []
        self.seen: set[Architecture] = set()
        self._best: Observation | None = None
        # proposed, not yet told -> how many times (a dict: ordered, unlike ``seen``, so
        # that what is built from it does not depend on the process's str hashing)
        self._pending: dict[Architecture, int] = {}
        self._proposing = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, returns_pair in (("ask", False), ("propose", True)):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "__records_pending__", False):
                setattr(cls, name, _records_pending(method, returns_pair=returns_pair))

    @abstractmethod
    def ask(self) -> Architecture:
        """Propose the next architecture to evaluate."""

    def tell(
        self,
        arch: Architecture,
        values: tuple[float, ...] | float | None,
        *,
        feasible: bool = True,
        fidelity: float | None = None,
    ) -> None:
        """Record a result (``None`` = failed) and let the strategy learn from it."""
        if values is not None and not isinstance(values, tuple):
            values = (float(values),)
        observation = Observation(arch, values, fidelity, feasible)
        self.history.append(observation)
        self.seen.add(arch)
        count = self._pending.get(arch, 0)  # 0: never pending (warm start, replay, screen)
        if count > 1:
            self._pending[arch] = count - 1  # keeps its place in the order
        elif count:
            del self._pending[arch]
        objective = observation.objective
        if objective is not None and (self._best is None or objective > self._best.objective):
            self._best = observation
        self._observe(observation)

    def propose(self) -> tuple[Architecture, float | None]:
        """The next architecture and the fidelity to evaluate it at (None = full).

        The study calls this; single-fidelity strategies only implement :meth:`ask`, and
        multi-fidelity ones (Hyperband, BOHB) override this to choose a budget too.
        """
        return self.ask(), None

    def hold(self, arch: Architecture) -> None:
        """Mark ``arch``, chosen by the study rather than proposed (a screening's pick), as
        seen and pending until told, so that it is never proposed and the fantasies of the
        proposals made while it is evaluated account for it."""
        self.seen.add(arch)
        self._pending[arch] = self._pending.get(arch, 0) + 1

    @property
    def pending(self) -> list[Architecture]:
        """The architectures proposed and not yet told, in the order first proposed (each
        once, also when proposed twice); see "Pending proposals" in the module docstring."""
        return list(self._pending)

    def _observe(self, observation: Observation) -> None:  # noqa: B027 (optional hook)
        """Hook for subclasses: update the model or population after a tell."""

    @property
    def best(self) -> Observation | None:
        """The feasible successful observation with the best primary objective so far."""
        return self._best

    def admits(self, arch: Architecture) -> bool:
        """False only for an architecture known, before evaluation, to break a constraint."""
        return self.admissible is None or self.admissible(arch)

    def sample_unseen(self, tries: int = 100) -> Architecture:
        """A uniform sample, avoiding already proposed architectures when possible."""
        arch = self.space.sample(self.rng)
        for _ in range(tries):
            if arch not in self.seen:
                break
            arch = self.space.sample(self.rng)
        self.seen.add(arch)
        return arch

    def mutate_unseen(self, parent: Architecture, tries: int = 50) -> Architecture:
        """A one-decision mutation of ``parent`` not proposed before; a fresh sample if none."""
        for _ in range(tries):
            child = self.space.mutate(parent, self.rng)
            if child not in self.seen:
                self.seen.add(child)
                return child
        # every mutant tried was seen (a small or sparse space): explore instead
        return self.sample_unseen()

    def options(self) -> dict[str, Any]:
        """The constructor options (besides space and seed), stored with a study: derived
        from the constructor's signature (:mod:`archsearch.configurable`), never copied."""
        return self.init_options()


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
