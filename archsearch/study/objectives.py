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
    "soft_constraints": [{"name": "latency", "op": "<=", "bound": 20.0, "weight": -0.07}],
    "reported": "test_accuracy"

A *soft* constraint is MnasNet's reward (Tan et al., CVPR 2019, eq. 2): the primary objective
is scaled by ``(value / bound) ** weight``, so a single-objective strategy trades accuracy
against a target instead of being walled in by it. With ``weight = -0.07`` a network twice
as slow as the target must be 5% more accurate to score the same.
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
class SoftConstraint:
    """MnasNet's soft target: the primary objective is multiplied by ``(value/bound)**w``
    (for ``>=``, by ``(bound/value)**w``), ``w < 0`` penalising a value beyond the bound
    and rewarding one inside it a little, so the reward is smooth around the target."""

    name: str
    op: str
    bound: float
    weight: float = -0.07
    #: MnasNet's alpha, the exponent while the value meets the target (None: ``weight``,
    #: the paper's soft reward); 0 gives its other variant, no reward for undershooting
    weight_inside: float | None = None

    def __post_init__(self) -> None:
        Constraint(self.name, self.op, self.bound)  # the same checks of name, op and bound
        if self.bound <= 0:
            raise ArchsearchError(f"soft constraint {self.name!r}: the target must be > 0")
        weight, inside = self.weight, self.weight_inside
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight >= 0:
            raise ArchsearchError(
                f"soft constraint {self.name!r}: weight must be a negative number, got {weight!r}"
            )
        if inside is not None and (
            isinstance(inside, bool) or not isinstance(inside, int | float) or inside > 0
        ):
            raise ArchsearchError(
                f"soft constraint {self.name!r}: weight_inside must be a number <= 0, "
                f"got {inside!r}"
            )

    def factor(self, value: float | None) -> float | None:
        """The reward's multiplier, None when the value is missing, not finite or <= 0."""
        if value is None or not math.isfinite(value) or value <= 0:
            return None
        ratio = value / self.bound if self.op == "<=" else self.bound / value
        inside = self.weight if self.weight_inside is None else self.weight_inside
        return ratio ** (inside if ratio <= 1 else self.weight)

    @classmethod
    def parse(
        cls, text: str, weight: float = -0.07, weight_inside: float | None = None
    ) -> SoftConstraint:
        """``'latency<=20'``, weighted by ``weight`` (and ``weight_inside`` under target)."""
        hard = Constraint.parse(text)
        return cls(hard.name, hard.op, hard.bound, weight, weight_inside)

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "op": self.op, "bound": self.bound, "weight": self.weight}
        return out if self.weight_inside is None else {**out, "weight_inside": self.weight_inside}

    def __str__(self) -> str:
        return f"({self.name}/{self.bound:g})^{self.weight:g}"


@dataclass(frozen=True)
class Declaration:
    """A study's objectives (the first is the primary one), constraints and reported value."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    reported: str | None = None
    soft_constraints: tuple[SoftConstraint, ...] = ()

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
        if self.soft_constraints and self.primary.direction != "max":
            raise ArchsearchError(
                "a soft constraint scales the primary objective, which must then be maximised "
                f"(an accuracy); {self.primary.name!r} is minimised"
            )

    @property
    def primary(self) -> Objective:
        return self.objectives[0]

    @property
    def value_names(self) -> list[str]:
        """Every value the declaration reads: objectives, then hard and soft constraints."""
        names = [o.name for o in self.objectives] + [c.name for c in self.constraints]
        names += [c.name for c in self.soft_constraints]
        return list(dict.fromkeys(names))

    def score(self, values: Mapping[str, float | None]) -> float | None:
        """What "best" ranks by: the primary objective, times the soft constraints'
        factors (MnasNet's reward) when there are any; None when it cannot be computed."""
        value = values.get(self.primary.name)
        if value is None or not math.isfinite(value):
            return None
        score = float(value)
        for soft in self.soft_constraints:
            factor = soft.factor(values.get(soft.name))
            if factor is None:
                return None
            score *= factor
        return score

    def vector(self, values: Mapping[str, float | None]) -> tuple[float, ...] | None:
        """The oriented objective vector, or None when a value is missing or not finite.
        Its first component is the :meth:`score` (the reward under soft constraints)."""
        score = self.score(values)
        (point,) = self.points([values])
        if score is None or point is None:
            return None
        return (self.primary.oriented(score), *point[1:])

    def points(self, rows: Sequence[Mapping[str, float | None]]) -> list[tuple[float, ...] | None]:
        """The oriented objective vectors of raw values (for a Pareto front), the *primary
        objective itself* first, not the soft reward: a front trades the raw values off."""
        out: list[tuple[float, ...] | None] = []
        for values in rows:
            vector = []
            for objective in self.objectives:
                value = values.get(objective.name)
                if value is None or not math.isfinite(value):
                    break
                vector.append(objective.oriented(float(value)))
            out.append(tuple(vector) if len(vector) == len(self.objectives) else None)
        return out

    def feasible(self, values: Mapping[str, float | None]) -> bool:
        return all(c.holds(values.get(c.name)) for c in self.constraints)

    def to_config(self) -> dict[str, Any]:
        return {
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": [c.to_dict() for c in self.constraints],
            "reported": self.reported,
            **(
                {"soft_constraints": [c.to_dict() for c in self.soft_constraints]}
                if self.soft_constraints
                else {}
            ),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], evaluator: Any) -> Declaration:
        """The declaration stored in ``config``; the evaluator's defaults where it is silent."""
        objectives = config.get("objectives")
        if objectives is None:
            objectives = [{"name": evaluator.objective_name, "direction": _direction(evaluator)}]
        constraints = config.get("constraints") or []
        soft = config.get("soft_constraints") or []
        reported = config.get("reported", evaluator.reported_name)
        return cls(
            objectives=tuple(_objective(o) for o in _sequence(objectives, "objectives")),
            constraints=tuple(_constraint(c) for c in _sequence(constraints, "constraints")),
            reported=_reported(reported),
            soft_constraints=tuple(_soft(c) for c in _sequence(soft, "soft_constraints")),
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


def _soft(item: Any) -> SoftConstraint:
    if isinstance(item, str):
        return SoftConstraint.parse(item)
    keys = {"name", "op", "bound", "weight", "weight_inside"}
    if not isinstance(item, Mapping) or not {"name", "op", "bound"} <= set(item) <= keys:
        raise ArchsearchError(
            "a soft constraint is {'name': ..., 'op': '<=' or '>=', 'bound': ..., 'weight': "
            f"-0.07}}, got {item!r}"
        )
    return SoftConstraint(
        item["name"], item["op"], item["bound"], item.get("weight", -0.07),
        item.get("weight_inside"),
    )  # fmt: skip


def _reported(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ArchsearchError(f"the reported value must be a value name, got {value!r}")
    return value
