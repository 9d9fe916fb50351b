"""Several evaluators as one: each scores the same architecture and their values merge.

"Accuracy from the table, parameters from the network" or "accuracy from training, FLOPs
from the network" is then a configuration, not a new class::

    {"name": "composite", "evaluators": [
        {"name": "nb201-table", "table": "nb201.csv", "dataset": "cifar10"},
        {"name": "cost"}]}

Rules:

* **Order.** Parts run in the given order, every one for every trial (a part whose values
  decide feasibility is not yet run first to skip the others).
* **Names.** Two parts may not declare the same objective or reported value (refused at
  construction). When two parts report a value of the same name, they must agree on it
  (NaN agrees with NaN): otherwise evaluation raises an
  :class:`~archsearch.errors.ArchsearchError` naming the value and both parts, and the
  study stops, since every trial would clash again. A later part never overwrites.
* **Defaults.** The objective, its direction and the reported value are the first part's.
* **Fidelity and time.** ``fidelity`` goes to every part (those that ignore it, ignore
  it); each part is given the seconds that the study has left once the parts before it
  have run. ``supports_fidelity`` and ``keeps_model`` hold when they hold for any part;
  the result's model is that of the first part that returned one.
* **Errors.** Any part's error is the trial's: a failing part fails the trial, a
  configuration error stops the study. Construction and ``check_space`` errors name the
  part.
* **Cheap values.** What any part knows without evaluating, merged by the same rules (a
  value two parts know must agree), so that "accuracy from training, FLOPs from the
  network" refuses an architecture over a FLOP budget before anything trains.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.space.base import Architecture, SearchSpace


@EVALUATORS.register("composite")
class CompositeEvaluator(Evaluator):
    """Runs ``evaluators`` (configurations, or evaluators) on each architecture and merges
    their values; see the module docstring for the rules."""

    def __init__(self, evaluators: Sequence[Mapping[str, Any] | Evaluator]) -> None:
        if isinstance(evaluators, str | bytes | Mapping) or not isinstance(evaluators, Sequence):
            raise ArchsearchError(
                f"evaluator composite needs a list of evaluators, got {evaluators!r}"
            )
        if not evaluators:
            raise ArchsearchError("evaluator composite needs at least one evaluator")
        self.parts: list[Evaluator] = [_part(i, item) for i, item in enumerate(evaluators)]
        self._check_declared_names()
        first = self.parts[0]
        self.objective_name = first.objective_name
        self.objective_direction = first.objective_direction
        self.reported_name = first.reported_name
        self.supports_fidelity = any(p.supports_fidelity for p in self.parts)
        self.keeps_model = any(p.keeps_model for p in self.parts)

    def _check_declared_names(self) -> None:
        declared: dict[str, int] = {}
        for i, part in enumerate(self.parts):
            for name in dict.fromkeys((part.objective_name, part.reported_name)):
                if name is None:
                    continue
                if name in declared:
                    raise ArchsearchError(
                        f"evaluator composite: {self.label(declared[name])} and "
                        f"{self.label(i)} both declare the value {name!r}; "
                        "each value needs one source"
                    )
                declared[name] = i

    def label(self, i: int) -> str:
        """How messages name part ``i``: ``part 1 (cost)``."""
        return f"part {i} ({self.parts[i].name})"

    def check_space(self, space: SearchSpace) -> None:
        for i, part in enumerate(self.parts):
            try:
                part.check_space(space)
            except ArchsearchError as exc:
                raise _named(exc, f"evaluator composite, {self.label(i)}") from None

    def value_names(self, space: SearchSpace) -> frozenset[str] | None:
        """Every part's names, when every part knows its own."""
        names = [part.value_names(space) for part in self.parts]
        return None if any(n is None for n in names) else frozenset().union(*names)

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        start = time.monotonic()
        merged = _Merged(self)
        model = None
        left = time_limit
        for i, part in enumerate(self.parts):
            result = part.evaluate(arch, space, seed=seed, fidelity=fidelity, time_limit=left)
            if time_limit is not None:
                left = max(0.0, time_limit - (time.monotonic() - start))
            merged.add(i, result.values)
            if model is None:
                model = result.model
        return EvalResult(merged.values, model)

    def cheap_values(self, arch: Architecture, space: SearchSpace) -> dict[str, float]:
        """Every part's cheap values, merged as :meth:`evaluate` merges results."""
        merged = _Merged(self)
        for i, part in enumerate(self.parts):
            merged.add(i, part.cheap_values(arch, space))
        return merged.values

    def config(self) -> dict[str, Any]:
        """The parts' own configurations (a part given as an instance is stored by them)."""
        return {"name": self.name, "evaluators": [part.config() for part in self.parts]}


class _Merged:
    """Values from the parts in order: the first part to report a name is its source; a
    later part that reports it differently is an ArchsearchError naming both."""

    def __init__(self, composite: CompositeEvaluator) -> None:
        self.composite = composite
        self.values: dict[str, float] = {}
        self.source: dict[str, int] = {}

    def add(self, i: int, values: Mapping[str, float]) -> None:
        label = self.composite.label
        for name, value in values.items():
            if name in self.values and not _same(self.values[name], value):
                raise ArchsearchError(
                    f"evaluator composite: {label(self.source[name])} reports "
                    f"{name} = {self.values[name]!r}, {label(i)} reports {name} = "
                    f"{value!r}; each value needs one source"
                )
            self.values.setdefault(name, value)
            self.source.setdefault(name, i)


def _part(i: int, item: Mapping[str, Any] | Evaluator) -> Evaluator:
    """Part ``i``: an evaluator as given, or one built from its configuration by the
    registry (construction errors name the part)."""
    if isinstance(item, Evaluator):
        return item
    if not isinstance(item, Mapping) or "name" not in item:
        raise ArchsearchError(
            f"evaluator composite, part {i}: expected an evaluator configuration with a "
            f"name, got {item!r}"
        )
    from archsearch.build import build_evaluator

    try:
        return build_evaluator(item)
    except ArchsearchError as exc:
        raise _named(exc, f"evaluator composite, part {i} ({item['name']})") from None


def _named(exc: ArchsearchError, where: str) -> ArchsearchError:
    """``exc`` of the same class, its message prefixed by where it happened."""
    message = f"{where}: {exc}"
    try:
        return type(exc)(message)
    except TypeError:
        return ArchsearchError(message)


def _same(a: float, b: float) -> bool:
    a, b = float(a), float(b)
    return a == b or (math.isnan(a) and math.isnan(b))
