"""Imports every built-in component so that registries are complete, and builds a study's
components from a configuration of names and options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import archsearch.data  # noqa: F401
import archsearch.evaluate  # noqa: F401
import archsearch.oneshot  # noqa: F401  (methods and the supernet evaluator)
import archsearch.predict  # noqa: F401
import archsearch.proxies  # noqa: F401
import archsearch.space  # noqa: F401
import archsearch.strategy  # noqa: F401
from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, Evaluator
from archsearch.space.base import SearchSpace
from archsearch.space.registry import SPACES
from archsearch.strategy.base import STRATEGIES, Strategy


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


def build_components(
    config: Mapping[str, Any], space: SearchSpace | None = None
) -> tuple[SearchSpace, Strategy, Evaluator]:
    """Space (unless given: a study read from its stored decisions), strategy (seeded with the
    study seed) and evaluator named by ``config``."""
    space = build_space(config.get("space")) if space is None else space
    name, options = _split(config.get("strategy"), "strategy")
    strategy = _construct(
        STRATEGIES.get(name), "strategy", name, space, seed=int(config.get("seed", 0)), **options
    )
    evaluator = build_evaluator(config.get("evaluator"))
    evaluator.check_space(space)
    return space, strategy, evaluator
