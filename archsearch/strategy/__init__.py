"""Search strategies: how candidates are proposed (ask/tell)."""

from archsearch.strategy.base import STRATEGIES, Observation, Strategy
from archsearch.strategy.bohb import BOHB
from archsearch.strategy.evolution import RegularizedEvolution
from archsearch.strategy.hyperband import Hyperband
from archsearch.strategy.local_search import LocalSearch
from archsearch.strategy.random_search import RandomSearch
from archsearch.strategy.reinforce import Reinforce


def make_strategy(name: str, space, seed: int = 0, **options) -> Strategy:
    """Construct a registered strategy by name."""
    return STRATEGIES.get(name)(space, seed=seed, **options)


__all__ = [
    "BOHB",
    "Hyperband",
    "Reinforce",
    "STRATEGIES",
    "LocalSearch",
    "Observation",
    "RandomSearch",
    "RegularizedEvolution",
    "Strategy",
    "make_strategy",
]
