"""Spaces whose decisions are active or not depending on others: a stage's depth decides
which of its blocks exist (mobilenet), a model's own control flow which layers do
(define-by-run). Inactive decisions take their first choice (the canonical form), so equal
networks are equal architectures, and proposing follows what is active.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping

import numpy as np

from archsearch.errors import InvalidArchitectureError
from archsearch.space.base import Architecture, Choice, SearchSpace


class ConditionalSpace(SearchSpace):
    """Sampling, mutation and neighbourhoods over the *active* decisions; subclasses say
    which are active (:meth:`active`) and map an assignment to its canonical member."""

    #: why a decision is inactive, for the error :meth:`make` raises
    inactive_reason: str = "are inactive"

    @abstractmethod
    def active(self, arch: Mapping[str, Choice]) -> tuple[str, ...]:
        """The labels of the decisions ``arch`` uses."""

    def _full(self, assignment: Mapping[str, Choice]) -> Architecture:
        """An architecture from a possibly partial assignment (missing labels: first choice)."""
        if not isinstance(assignment, Mapping):
            raise InvalidArchitectureError(f"an architecture must be a mapping, got {assignment!r}")
        unknown = [k for k in assignment if k not in self._by_label]
        if unknown:
            raise InvalidArchitectureError(
                f"unknown decision(s) {unknown}; decisions: {list(self._by_label)}"
            )
        values = []
        for d in self.decisions:
            value = assignment.get(d.label, d.choices[0])
            d.index(value)
            values.append((d.label, value))
        return Architecture(values)

    def canonical(self, assignment: Mapping[str, Choice]) -> Architecture:
        """The canonical member for ``assignment``: inactive decisions take their first
        choice, and so do labels missing from ``assignment``."""
        arch = self._full(assignment)
        active = set(self.active(arch))
        return Architecture(
            (d.label, arch[d.label] if d.label in active else d.choices[0]) for d in self.decisions
        )

    def is_valid(self, arch: Architecture) -> bool:
        return self.canonical(arch) == arch

    def make(self, assignment: Mapping[str, Choice]) -> Architecture:
        """A full assignment, checked for values and for canonical form."""
        if not isinstance(assignment, Mapping):
            raise InvalidArchitectureError(f"an architecture must be a mapping, got {assignment!r}")
        missing = [d.label for d in self.decisions if d.label not in assignment]
        if missing:
            raise InvalidArchitectureError(
                f"assignment does not match space {self.name!r}: missing {missing} "
                f"(space.canonical(...) fills missing decisions with their first choice)"
            )
        arch = self._full(assignment)  # unknown labels and bad values, by name
        canonical = self.canonical(arch)
        if canonical != arch:
            stray = [k for k in arch if arch[k] != canonical[k]]
            raise InvalidArchitectureError(
                f"decisions {stray} {self.inactive_reason}, so they must hold their first "
                f"choice; space.canonical(...) gives {canonical}"
            )
        return arch

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Every decision uniform, then canonical (ancestral sampling): each depth is then
        uniform, so shallow networks are proposed as often as deep ones; a draw uniform over
        distinct networks would almost always be deepest, since deep ones are most of them."""
        values = [int(rng.integers(len(d.choices))) for d in self.decisions]
        return self.canonical(self._from_indices(values))

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change one *active* decision, so that the network really changes; decisions the
        change activates (a block a larger depth adds) are drawn uniformly, as
        :meth:`sample` would draw them, rather than fixed at their first choice."""
        active = set(self.active(arch))
        mutable = [d for d in self.decisions if d.label in active and len(d.choices) > 1]
        if not mutable:
            return self.canonical(arch)
        d = mutable[int(rng.integers(len(mutable)))]
        current = d.index(arch[d.label])
        offset = int(rng.integers(1, len(d.choices)))
        changes: dict[str, Choice] = {d.label: d.choices[(current + offset) % len(d.choices)]}
        for other in self.decisions:
            if other.label not in active:
                changes[other.label] = other.choices[int(rng.integers(len(other.choices)))]
        return self.canonical(arch.with_changes(changes))

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Canonical members one active decision away (newly active ones at first choice)."""
        arch = self.canonical(arch)
        result: dict[Architecture, None] = {}
        for label in self.active(arch):
            for value in self._by_label[label].choices:
                if value != arch[label]:
                    result.setdefault(self.canonical(arch.replace(**{label: value})))
        result.pop(arch, None)
        return list(result)
