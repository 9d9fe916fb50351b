"""Name-based registries, so that a CLI flag or a config string selects a component.

A component registers itself at import time with a decorator::

    @STRATEGIES.register("evolution")
    class RegularizedEvolution(Strategy): ...

and is looked up by name; an unknown name fails with the list of known ones.

Built-in components are also declared in :mod:`archsearch.catalog` as ``"module:attribute"``,
so that a registry knows their names before their modules are imported (importing them costs
seconds: most import torch). ``get(name)`` imports the declaring module on first use, and its
decorator registers the component; :func:`list_components` reads names without importing.
"""

from __future__ import annotations

import fnmatch
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from archsearch.catalog import BUILTIN
from archsearch.errors import UnknownComponentError

T = TypeVar("T")

_ALL: dict[str, Registry[Any]] = {}


def plural(kind: str) -> str:
    """The plural of a component kind for messages: strategies, proxies, spaces."""
    if kind.endswith("y") and kind[-2:-1] not in ("a", "e", "o", "u"):
        return kind[:-1] + "ies"
    return kind + "s"


def _module_of(target: str) -> str:
    return target.partition(":")[0]


class Registry(Generic[T]):
    """A named collection of components of one kind (spaces, strategies, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        #: built-in names not imported yet: name -> "module:attribute" (from the catalog)
        self._lazy: dict[str, str] = dict(BUILTIN.get(kind, {}))
        _ALL[kind] = self

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a component under ``name``.

        A name the catalog declares may only be registered while its declared module is being
        imported, so that another module cannot shadow a built-in that is not loaded yet. A
        registered class's ``name`` attribute becomes ``name``: the registered name is the
        component's name, written once.
        """

        def decorator(component: T) -> T:
            if name in self._entries and self._entries[name] is not component:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            target = self._lazy.get(name)
            if target is not None and _module_of(target) not in sys.modules:
                raise ValueError(
                    f"{self.kind} {name!r} is registered twice: archsearch/catalog.py declares "
                    f"it as {target!r} (update the catalog if the component moved)"
                )
            self._entries[name] = component
            if isinstance(component, type):
                component.name = name  # type: ignore[attr-defined]
            return component

        return decorator

    def get(self, name: str) -> T:
        """The component called ``name``, importing its module if it is a built-in not loaded."""
        try:
            return self._entries[name]
        except KeyError:
            pass
        target = self._lazy.get(name)
        if target is None:
            known = ", ".join(self.names()) or "none"
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}; known {plural(self.kind)}: {known}"
            ) from None
        importlib.import_module(_module_of(target))
        try:
            return self._entries[name]
        except KeyError:
            raise RuntimeError(
                f"archsearch/catalog.py declares {self.kind} {name!r} as {target!r}, "
                f"but importing that module did not register it"
            ) from None

    def names(self) -> list[str]:
        """Every name, loaded or only declared in the catalog, sorted."""
        return sorted(self._entries.keys() | self._lazy.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def list_components(pattern: str = "*") -> list[str]:
    """Components as ``kind/name``, filtered by a glob such as ``"strategy/*"``.

    Built-ins come from the catalog, so nothing is imported; components registered by other
    code count once their module has been imported.
    """
    names = {f"{kind}/{name}" for kind, table in BUILTIN.items() for name in table}
    names.update(f"{kind}/{name}" for kind, reg in _ALL.items() for name in reg.names())
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))
