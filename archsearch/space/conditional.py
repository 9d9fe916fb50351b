"""Spaces whose decisions are active or not depending on others: a stage's depth decides
which of its blocks exist (mobilenet), a model's own control flow which layers do
(define-by-run). Inactive decisions take their first choice (the canonical form), so equal
networks are equal architectures, and proposing follows what is active.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping

import numpy as np

from archsearch.space.base import Architecture, Choice, SearchSpace


class ConditionalSpace(SearchSpace):
    """Sampling, mutation and neighbourhoods over the *active* decisions; subclasses say
    which are active (:meth:`active`) and map an assignment to its canonical member."""

    @abstractmethod
    def active(self, arch: Mapping[str, Choice]) -> tuple[str, ...]:
        """The labels of the decisions ``arch`` uses."""

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
