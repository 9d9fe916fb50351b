"""A study's space rebuilt from what the study stored, without running any code it names.

A define-by-run space is made by running a user's factory, named in the study file by an
import string. Importing it to merely *look* at a study (``show``, ``report``, ``plot``,
``rules``) would run whatever module a crafted file names, so those commands read a
:class:`StoredSpace` instead: the decisions and their choices, which a study stores when it
is created (meta :data:`DECISIONS`). A study written before that key existed gets them from
its trials' stored assignments (each decision with the choices its trials took).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from archsearch.errors import InvalidArchitectureError, StudyError
from archsearch.space.base import Architecture, Choice, Decision, SearchSpace

#: the meta key holding ``[[label, [choice, ...]], ...]`` for a space that runs user code
DECISIONS = "space_decisions"
_SCALARS = (str, int, float, bool, type(None))


def decisions_to_meta(space: SearchSpace) -> list[list[Any]]:
    return [[d.label, list(d.choices)] for d in space.decisions]


def decisions_from_meta(stored: Any) -> list[Decision]:
    """The decisions stored under :data:`DECISIONS`; a crafted value is refused by name."""
    if not isinstance(stored, list):
        raise StudyError(f"the stored decisions are not a list: {stored!r:.60}")
    decisions = []
    for item in stored:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise StudyError(f"a stored decision is not [label, choices]: {item!r:.60}")
        label, choices = item
        if not isinstance(choices, list) or not all(isinstance(c, _SCALARS) for c in choices):
            raise StudyError(f"the stored choices of {label!r} are not a list of values")
        decisions.append(_decision(label, choices))
    return decisions


def decisions_from_trials(assignments: Iterable[Mapping[str, Choice]]) -> list[Decision]:
    """Each label of the stored assignments with the choices they took, in first-seen order
    (a study stored before its decisions were: the choices no trial took are unknown)."""
    seen: dict[str, list[Choice]] = {}
    for assignment in assignments:
        for label, value in assignment.items():
            choices = seen.setdefault(label, [])
            if not any(type(c) is type(value) and c == value for c in choices):
                choices.append(value)
    return [_decision(label, choices) for label, choices in seen.items()]


def _decision(label: str, choices: Sequence[Choice]) -> Decision:
    try:
        return Decision(label, tuple(choices))
    except (InvalidArchitectureError, TypeError) as exc:  # no or repeated choices
        raise StudyError(f"the stored decision {label!r} is not valid: {exc}") from None


class StoredSpace(SearchSpace):
    """The decisions of a study's space, as stored: enough to read, draw and learn from its
    trials; building a network needs the real space (``resume``, ``export``)."""

    def __init__(self, name: str, decisions: Sequence[Decision]) -> None:
        super().__init__(decisions)
        self.name = name

    def build(self, arch: Architecture, input_shape: Sequence[int], num_classes: int) -> Any:
        raise StudyError(
            f"the {self.name} space of this study was opened to read only: its code was not "
            "imported, so it builds no network (resume or export the study instead)"
        )

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "decisions": decisions_to_meta(self)}
