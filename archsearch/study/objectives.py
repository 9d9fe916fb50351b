"""What a study optimises: objectives with directions, constraints with bounds, and the
value it reports.

An evaluator returns named values; a study declares which of them matter, so that one
evaluator serves "maximise accuracy", "maximise accuracy with at most 1M parameters" and
"accuracy against latency" alike. Strategies see only the *oriented* objective vector
(every component "higher is better": a ``min`` objective is negated) and a feasibility flag,
never the reported value.

In a stored configuration::

    "objectives": [{"name": "valid_accuracy", "direction": "max"},
                   {"name": "params", "direction": "min"}],
    "constraints": [{"name": "flops", "op": "<=", "bound": 3e8}],
    "reported": "test_accuracy"
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archsearch.errors import ArchsearchError

DIRECTIONS = ("max", "min")
OPERATORS = ("<=", ">=")


@dataclass(frozen=True)
class Objective:
    """A named value and whether larger (``max``) or smaller (``min``) is better."""

    name: str
    direction: str = "max"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ArchsearchError(f"an objective needs a value name, got {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise ArchsearchError(
                f"objective {self.name!r}: direction must be max or min, got {self.direction!r}"
            )

    def oriented(self, value: float) -> float:
        """The value as a strategy sees it: higher is better."""
        return value if self.direction == "max" else -value

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b

    @classmethod
    def parse(cls, text: str) -> Objective:
        """``NAME`` (maximised), ``NAME:max`` or ``NAME:min``."""
        name, _, direction = text.rpartition(":") if ":" in text else (text, "", "max")
        return cls(name.strip(), direction.strip() or "max")

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "direction": self.direction}


@dataclass(frozen=True)
class Constraint:
    """A hard bound on a named value: ``name <= bound`` or ``name >= bound``."""

    name: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ArchsearchError(f"a constraint needs a value name, got {self.name!r}")
        if self.op not in OPERATORS:
            raise ArchsearchError(f"constraint {self.name!r}: use <= or >=, got {self.op!r}")
        if isinstance(self.bound, bool) or not isinstance(self.bound, int | float):
            raise ArchsearchError(f"constraint {self.name!r}: bound {self.bound!r} is no number")
        if not math.isfinite(self.bound):
            raise ArchsearchError(f"constraint {self.name!r}: bound must be finite")

    def holds(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        return value <= self.bound if self.op == "<=" else value >= self.bound

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """``'params<=1e6'`` or ``'valid_accuracy>=80'``."""
        match = re.fullmatch(r"\s*([^<>=\s]+)\s*(<=|>=)\s*(\S+)\s*", text)
        if match is None:
            raise ArchsearchError(f"constraint must look like NAME<=VALUE or NAME>=VALUE: {text!r}")
        name, op, bound = match.groups()
        try:
            number = float(bound)
        except ValueError:
            raise ArchsearchError(f"constraint {text!r}: {bound!r} is no number") from None
        return cls(name, op, number)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "bound": self.bound}

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.bound:g}"


@dataclass(frozen=True)
class Declaration:
    """A study's objectives (the first is the primary one), constraints and reported value."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    reported: str | None = None

    def __post_init__(self) -> None:
        if not self.objectives:
            raise ArchsearchError("a study needs at least one objective")
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise ArchsearchError(f"objectives repeat a value: {names}")
        if self.reported in names:
            raise ArchsearchError(
                f"{self.reported!r} is an objective, so it cannot be the reported value "
                "(a reported value is never shown to the strategy)"
            )

    @property
    def primary(self) -> Objective:
        return self.objectives[0]

    def vector(self, values: Mapping[str, float | None]) -> tuple[float, ...] | None:
        """The oriented objective vector, or None when a value is missing or not finite."""
        out = []
        for objective in self.objectives:
            value = values.get(objective.name)
            if value is None or not math.isfinite(value):
                return None
            out.append(objective.oriented(float(value)))
        return tuple(out)

    def feasible(self, values: Mapping[str, float | None]) -> bool:
        return all(c.holds(values.get(c.name)) for c in self.constraints)

    def to_config(self) -> dict[str, Any]:
        return {
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": [c.to_dict() for c in self.constraints],
            "reported": self.reported,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], evaluator: Any) -> Declaration:
        """The declaration stored in ``config``; the evaluator's defaults where it is silent."""
        objectives = config.get("objectives")
        if objectives is None:
            objectives = [{"name": evaluator.objective_name, "direction": _direction(evaluator)}]
        constraints = config.get("constraints") or []
        reported = config.get("reported", evaluator.reported_name)
        return cls(
            objectives=tuple(_objective(o) for o in _sequence(objectives, "objectives")),
            constraints=tuple(_constraint(c) for c in _sequence(constraints, "constraints")),
            reported=_reported(reported),
        )


def _direction(evaluator: Any) -> str:
    return getattr(evaluator, "objective_direction", "max")


def _sequence(value: Any, key: str) -> Sequence[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ArchsearchError(f"study configuration: {key} must be a list, got {value!r}")
    return value


def _objective(item: Any) -> Objective:
    if isinstance(item, str):
        return Objective.parse(item)
    if not isinstance(item, Mapping) or set(item) - {"name", "direction"}:
        raise ArchsearchError(f"an objective is {{'name': ..., 'direction': ...}}, got {item!r}")
    return Objective(item.get("name"), item.get("direction", "max"))


def _constraint(item: Any) -> Constraint:
    if isinstance(item, str):
        return Constraint.parse(item)
    if not isinstance(item, Mapping) or set(item) != {"name", "op", "bound"}:
        raise ArchsearchError(
            f"a constraint is {{'name': ..., 'op': '<=' or '>=', 'bound': ...}}, got {item!r}"
        )
    return Constraint(item["name"], item["op"], item["bound"])


def _reported(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ArchsearchError(f"the reported value must be a value name, got {value!r}")
    return value
