"""Architectures and search spaces.

An architecture is an immutable assignment of a choice to every named decision of a space.
A space is a product of decisions, optionally restricted by a validity constraint. Spaces
know how to sample, mutate, enumerate neighbours, serialise, encode as vectors and build a
``torch.nn.Module``; strategies use only the first five and so never import torch.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.configurable import Configurable
from archsearch.errors import InvalidArchitectureError

if TYPE_CHECKING:
    import torch

    from archsearch.hardware.units import Unit

Choice = str | int | float | bool | None


def choice_order(value: Choice) -> tuple[int, Any]:
    """The sort key of choices found in data rather than declared: numbers by value, then
    everything else by its text, so that mixed columns still sort."""
    return (0, value) if isinstance(value, int | float) else (1, str(value))


@dataclass(frozen=True)
class Decision:
    """One named decision and its finite, ordered set of choices."""

    label: str
    choices: tuple[Choice, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise InvalidArchitectureError(f"decision {self.label!r} has no choices")
        if len(set(self.choices)) != len(self.choices):
            raise InvalidArchitectureError(f"decision {self.label!r} repeats a choice")
        object.__setattr__(self, "choices", tuple(self.choices))

    def index(self, value: Choice) -> int:
        try:
            return self.choices.index(value)
        except ValueError:
            raise InvalidArchitectureError(
                f"{value!r} is not a choice of {self.label!r}; choices: {list(self.choices)}"
            ) from None


class Architecture(Mapping[str, Choice]):
    """An immutable, hashable mapping from decision label to chosen value.

    Two architectures are equal when they assign the same values to the same labels; the
    order of labels is the order of the space's decisions, so that ``str`` is stable.
    """

    __slots__ = ("_items", "_index", "_hash")

    def __init__(self, items: Iterable[tuple[str, Choice]]) -> None:
        self._items: tuple[tuple[str, Choice], ...] = tuple(items)
        self._index = dict(self._items)
        self._hash = hash(self._items)

    def __getitem__(self, label: str) -> Choice:
        return self._index[label]

    def __iter__(self) -> Iterator[str]:
        return (label for label, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Architecture):
            return self._hash == other._hash and self._items == other._items
        return NotImplemented

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self._items)
        return f"Architecture({body})"

    def replace(self, **changes: Choice) -> Architecture:
        """A copy with some decisions changed (labels given as keyword arguments)."""
        return self.with_changes(changes)

    def with_changes(self, changes: Mapping[str, Choice]) -> Architecture:
        unknown = set(changes) - set(self._index)
        if unknown:
            raise InvalidArchitectureError(f"unknown decision(s) {sorted(unknown)}")
        return Architecture((k, changes.get(k, v)) for k, v in self._items)

    def to_dict(self) -> dict[str, Choice]:
        return dict(self._items)


#: the optional capabilities a space may declare (see :class:`SearchSpace`)
CAPABILITIES = (
    "build", "graph", "operations", "canonical", "isomorphism_hash", "allowed", "latency_units",
)  # fmt: skip


class SearchSpace(Configurable):
    """A product of decisions, optionally with a validity constraint.

    Subclasses set the decisions and may override :meth:`is_valid` (constraints),
    :meth:`to_string`/:meth:`from_string` (a field-standard string format), :meth:`build`
    (the network) and :meth:`encode` (extra encodings). Everything else follows from the
    decisions, so a new space is usually a constructor and a ``build``.

    **Optional capabilities** are declared, not probed for: a space lists in
    :attr:`capabilities` which of these it provides, and callers ask
    :meth:`supports` instead of ``hasattr`` (``tests/test_contracts.py`` checks that each
    declared capability is implemented and each implemented one declared):

    * ``"build"``: :meth:`build` returns a ``torch.nn.Module`` for an architecture;
    * ``"graph"``: :meth:`graph` gives the cell as an operation-on-node DAG (path and
      adjacency encodings, GATES, cell hashing);
    * ``"operations"``: :attr:`operations` is the operation vocabulary of its cells;
    * ``"canonical"``: :meth:`canonical` maps an assignment to the one member standing for
      it (define-by-run spaces, whose inactive decisions take their first choice);
    * ``"isomorphism_hash"``: :meth:`isomorphism_hash` names the cells that compute the same
      function alike (so a strategy does not evaluate one twice);
    * ``"allowed"``: :meth:`allowed` says which choices keep a partial assignment valid
      (controllers that sample decision by decision);
    * ``"latency_units"``: :meth:`latency_units` cuts a network into the pieces a latency
      lookup table measures (:mod:`archsearch.hardware.units`), and
      :meth:`all_latency_units` lists every piece any network of the space can hold.
    """

    name: str = "space"
    #: whether :meth:`is_valid` can reject assignments (sampling then uses rejection)
    constrained: bool = False
    #: a space made directly from decision objects is not rebuilt from its stored options
    not_options: tuple[str, ...] = ("decisions",)
    #: the optional capabilities this space provides (see the class docstring)
    capabilities: frozenset[str] = frozenset()
    #: the operation vocabulary, for spaces with the ``"operations"`` capability
    operations: tuple[str, ...] | None = None

    def __init__(self, decisions: Sequence[Decision]) -> None:
        labels = [d.label for d in decisions]
        if len(set(labels)) != len(labels):
            raise InvalidArchitectureError(f"duplicate decision labels in {labels}")
        self.decisions: tuple[Decision, ...] = tuple(decisions)
        self._by_label = {d.label: d for d in self.decisions}

    # ----------------------------------------------------------------- membership
    def decision(self, label: str) -> Decision:
        try:
            return self._by_label[label]
        except KeyError:
            raise InvalidArchitectureError(
                f"unknown decision {label!r}; decisions: {list(self._by_label)}"
            ) from None

    def is_valid(self, arch: Architecture) -> bool:
        """Constraint hook: subclasses return False for assignments outside the space."""
        return True

    def make(self, assignment: Mapping[str, Choice]) -> Architecture:
        """The architecture for a full assignment, checked against decisions and constraints."""
        missing = [d.label for d in self.decisions if d.label not in assignment]
        extra = [k for k in assignment if k not in self._by_label]
        if missing or extra:
            raise InvalidArchitectureError(
                f"assignment does not match space {self.name!r}: missing {missing}, unknown {extra}"
            )
        for d in self.decisions:
            d.index(assignment[d.label])
        arch = Architecture((d.label, assignment[d.label]) for d in self.decisions)
        if not self.is_valid(arch):
            raise InvalidArchitectureError(f"invalid architecture for {self.name!r}: {arch}")
        return arch

    def validate(self, arch: Mapping[str, Choice]) -> Architecture:
        return self.make(arch)

    def __contains__(self, arch: object) -> bool:
        if not isinstance(arch, Mapping):
            return False
        try:
            self.make(arch)
        except InvalidArchitectureError:
            return False
        return True

    # ------------------------------------------------------------- exploration
    def _from_indices(self, indices: Sequence[int]) -> Architecture:
        return Architecture(
            (d.label, d.choices[i]) for d, i in zip(self.decisions, indices, strict=True)
        )

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random valid architecture (rejection sampling under constraints)."""
        for _ in range(10_000):
            arch = self._from_indices([int(rng.integers(len(d.choices))) for d in self.decisions])
            if not self.constrained or self.is_valid(arch):
                return arch
        raise InvalidArchitectureError(f"could not sample a valid architecture from {self.name!r}")

    def distinct_samples(self, rng: np.random.Generator, size: int) -> list[Architecture]:
        """``size`` distinct uniform samples, in the order drawn (fewer only if the space is
        smaller: at most ``100 * size`` draws)."""
        sample: list[Architecture] = []
        chosen: set[Architecture] = set()
        for _ in range(100 * size):
            if len(sample) == size:
                break
            arch = self.sample(rng)
            if arch not in chosen:
                chosen.add(arch)
                sample.append(arch)
        return sample

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change one decision to another of its choices, uniformly, keeping validity."""
        mutable = [d for d in self.decisions if len(d.choices) > 1]
        if not mutable:
            return arch
        for _ in range(1_000):
            d = mutable[int(rng.integers(len(mutable)))]
            current = d.index(arch[d.label])
            offset = int(rng.integers(1, len(d.choices)))
            child = arch.replace(**{d.label: d.choices[(current + offset) % len(d.choices)]})
            if not self.constrained or self.is_valid(child):
                return child
        return arch

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every valid architecture that differs from ``arch`` in exactly one decision."""
        result = []
        for d in self.decisions:
            for value in d.choices:
                if value != arch[d.label]:
                    child = arch.replace(**{d.label: value})
                    if not self.constrained or self.is_valid(child):
                        result.append(child)
        return result

    def size(self) -> int:
        """Number of valid architectures (enumerated when the space is constrained)."""
        product = math.prod(len(d.choices) for d in self.decisions)
        if not self.constrained:
            return product
        if product > 5_000_000:
            raise InvalidArchitectureError(
                f"space {self.name!r} is constrained and too large ({product}) to count exactly"
            )
        return sum(1 for _ in self.enumerate())

    def enumerate(self) -> Iterator[Architecture]:
        """Every valid architecture, in the lexicographic order of choice indices."""
        ranges = [range(len(d.choices)) for d in self.decisions]
        for indices in itertools.product(*ranges):
            arch = self._from_indices(indices)
            if not self.constrained or self.is_valid(arch):
                yield arch

    # --------------------------------------------------------------- serialising
    def to_json(self, arch: Architecture) -> dict[str, Choice]:
        return arch.to_dict()

    def from_json(self, data: Mapping[str, Choice]) -> Architecture:
        if not isinstance(data, Mapping):
            raise InvalidArchitectureError(f"an architecture must be a JSON object, got {data!r}")
        return self.make(data)

    def to_string(self, arch: Architecture) -> str:
        """Canonical string: equal architectures give equal strings."""
        return json.dumps(arch.to_dict(), separators=(",", ":"))

    def from_string(self, text: str) -> Architecture:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArchitectureError(f"cannot parse architecture {text!r}: {exc}") from None
        return self.from_json(data)

    # ------------------------------------------------------------------ encoding
    encodings: tuple[str, ...] = ("onehot",)

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        """A fixed-length float vector for predictors; ``onehot`` exists for every space."""
        if kind != "onehot":
            raise InvalidArchitectureError(
                f"unknown encoding {kind!r} for space {self.name!r}; known: {list(self.encodings)}"
            )
        parts = []
        for d in self.decisions:
            row = np.zeros(len(d.choices), dtype=np.float32)
            row[d.index(arch[d.label])] = 1.0
            parts.append(row)
        return np.concatenate(parts)

    # ------------------------------------------------------------- capabilities
    def supports(self, capability: str) -> bool:
        """Whether the space provides ``capability`` (one of :data:`CAPABILITIES`)."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; known: {list(CAPABILITIES)}")
        return capability in self.capabilities

    def graph(self, arch: Architecture) -> tuple[np.ndarray, list[str]]:
        """``(adjacency, node operation names)`` of the cell (capability ``"graph"``)."""
        raise NotImplementedError(f"space {self.name!r} has no graph view")

    def canonical(self, assignment: Mapping[str, Choice]) -> Architecture:
        """The member standing for ``assignment`` (capability ``"canonical"``)."""
        raise NotImplementedError(f"space {self.name!r} has no canonical form")

    def isomorphism_hash(self, arch: Architecture) -> str:
        """Equal for cells computing the same function (capability ``"isomorphism_hash"``)."""
        raise NotImplementedError(f"space {self.name!r} has no isomorphism hash")

    def allowed(self, decision_label: str, partial: Mapping[str, Choice]) -> list[bool]:
        """Which choices keep ``partial`` valid (capability ``"allowed"``)."""
        raise NotImplementedError(f"space {self.name!r} does not check partial assignments")

    def latency_units(
        self, arch: Architecture, input_shape: Sequence[int], num_classes: int
    ) -> list[Unit]:
        """The network of ``arch`` as :class:`~archsearch.hardware.units.Unit` s whose
        latencies sum to its own (capability ``"latency_units"``)."""
        raise NotImplementedError(f"space {self.name!r} has no latency units")

    def all_latency_units(self, input_shape: Sequence[int], num_classes: int) -> list[Unit]:
        """Every distinct unit, by key, of any network of the space (``"latency_units"``)."""
        raise NotImplementedError(f"space {self.name!r} has no latency units")

    # ------------------------------------------------------------------ building
    def build(
        self, arch: Architecture, input_shape: Sequence[int], num_classes: int
    ) -> torch.nn.Module:
        """The network for ``arch`` on inputs of shape ``(C, H, W)`` (or ``(F,)``)."""
        raise NotImplementedError(f"space {self.name!r} does not build networks")

    @classmethod
    def stored_code(cls, options: Mapping[str, Any]) -> str | None:
        """The import string of user code that building this space from its stored
        ``options`` would import (a define-by-run factory); None when only archsearch's own
        code runs. A study opened to read only then reads its stored decisions instead."""
        return None

    def config(self) -> dict[str, Any]:
        """What the space registry needs to construct this space again (stored in studies):
        its name and constructor arguments (:mod:`archsearch.configurable`)."""
        return {"name": self.name, **self.init_options()}
