"""Search strategies: how candidates are proposed (ask/tell).

Strategies import neither torch nor the proxies nor the data: training-free search (NASWOT,
the proxy warm start, TE-NAS) is a study's screening step (:mod:`archsearch.study.screening`),
available before every strategy.
"""

from archsearch.strategy.bananas import BANANAS
from archsearch.strategy.base import STRATEGIES, Observation, Strategy
from archsearch.strategy.bohb import BOHB
from archsearch.strategy.evolution import RegularizedEvolution
from archsearch.strategy.hyperband import Hyperband
from archsearch.strategy.local_search import LocalSearch
from archsearch.strategy.mo_evolution import MultiObjectiveEvolution
from archsearch.strategy.mo_predictor import MultiObjectivePredictor
from archsearch.strategy.nsga2 import NSGA2
from archsearch.strategy.predictor_evolution import PredictorGuidedEvolution
from archsearch.strategy.random_search import RandomSearch
from archsearch.strategy.reinforce import Reinforce


def make_strategy(name: str, space, seed: int = 0, **options) -> Strategy:
    """Construct a registered strategy by name."""
    return STRATEGIES.get(name)(space, seed=seed, **options)


__all__ = [
    "BANANAS",
    "BOHB",
    "STRATEGIES",
    "Hyperband",
    "LocalSearch",
    "MultiObjectiveEvolution",
    "MultiObjectivePredictor",
    "NSGA2",
    "Observation",
    "PredictorGuidedEvolution",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "Strategy",
    "make_strategy",
]
