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
from archsearch.build import _construct, _split, build_evaluator, build_space
from archsearch.evaluate.base import Evaluator
from archsearch.space.base import SearchSpace
from archsearch.strategy.base import STRATEGIES, Strategy

__all__ = ["build_components", "build_evaluator", "build_space"]


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
