"""archsearch: neural architecture search with swappable spaces, strategies and evaluators.

The names below are imported on first access (PEP 562), so that ``import archsearch`` and the
command line's ``--help`` stay cheap: :mod:`archsearch.study` pulls in torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from archsearch.errors import ArchsearchError
from archsearch.registry import list_components

if TYPE_CHECKING:
    from archsearch.space import Architecture, SearchSpace, make_space
    from archsearch.strategy import Strategy, make_strategy
    from archsearch.study import Budget, Study

__version__ = "0.1.0"

#: public name -> the module it is imported from on first access
_LAZY = {
    "Architecture": "archsearch.space",
    "SearchSpace": "archsearch.space",
    "make_space": "archsearch.space",
    "Strategy": "archsearch.strategy",
    "make_strategy": "archsearch.strategy",
    "Budget": "archsearch.study",
    "Study": "archsearch.study",
}

__all__ = [
    "ArchsearchError",
    "Architecture",
    "Budget",
    "SearchSpace",
    "Strategy",
    "Study",
    "list_components",
    "make_space",
    "make_strategy",
]


def __getattr__(name: str) -> Any:
    """Import a public name, or a subpackage (``archsearch.space``), when first used."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
