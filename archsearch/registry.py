"""Name-based registries, so that a CLI flag or a config string selects a component.

A component registers itself at import time with a decorator::

    @STRATEGIES.register("evolution")
    class RegularizedEvolution(Strategy): ...

and is looked up by name; an unknown name fails with the list of known ones.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from archsearch.errors import UnknownComponentError

T = TypeVar("T")

_ALL: dict[str, Registry[Any]] = {}


class Registry(Generic[T]):
    """A named collection of components of one kind (spaces, strategies, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        _ALL[kind] = self

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(component: T) -> T:
            if name in self._entries and self._entries[name] is not component:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = component
            return component

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}; known {self.kind}s: {known}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def list_components(pattern: str = "*") -> list[str]:
    """Registered components as ``kind/name``, filtered by a glob such as ``"strategy/*"``."""
    import archsearch.components  # noqa: F401  (registers everything)

    names = [f"{kind}/{name}" for kind, reg in _ALL.items() for name in reg.names()]
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))
