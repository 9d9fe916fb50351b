"""Building a space or an evaluator from its configuration section, through the registries
alone: only the named component's module is imported (a worker process that evaluates
trials builds its evaluator this way without paying for every component's imports)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, Evaluator
from archsearch.space.base import SearchSpace
from archsearch.space.registry import SPACES


def _split(section: Mapping[str, Any] | None, kind: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(section, Mapping) or not isinstance(section.get("name"), str):
        raise ArchsearchError(
            f"study configuration needs a {kind} with a name, got {section!r:.80}"
        )
    options = dict(section)
    return options.pop("name"), options


def _construct(factory: Any, kind: str, name: str, /, *args: Any, **options: Any) -> Any:
    try:
        return factory(*args, **options)
    except TypeError as exc:
        raise ArchsearchError(f"bad options for {kind} {name!r}: {exc}") from None


def build_space(section: Mapping[str, Any]) -> SearchSpace:
    name, options = _split(section, "space")
    return _construct(SPACES.get(name), "space", name, **options)


def build_evaluator(section: Mapping[str, Any]) -> Evaluator:
    name, options = _split(section, "evaluator")
    return _construct(EVALUATORS.get(name), "evaluator", name, **options)
