"""Search strategies: how candidates are proposed (ask/tell)."""

from archsearch.strategy.base import STRATEGIES, Observation, Strategy
from archsearch.strategy.evolution import RegularizedEvolution
from archsearch.strategy.local_search import LocalSearch
from archsearch.strategy.random_search import RandomSearch


def make_strategy(name: str, space, seed: int = 0, **options) -> Strategy:
    """Construct a registered strategy by name."""
    return STRATEGIES.get(name)(space, seed=seed, **options)


__all__ = [
    "STRATEGIES",
    "LocalSearch",
    "Observation",
    "RandomSearch",
    "RegularizedEvolution",
    "Strategy",
    "make_strategy",
]
