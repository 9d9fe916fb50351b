"""Random search: the baseline every other strategy must beat (Li & Talwalkar 2019)."""

from archsearch.space.base import Architecture
from archsearch.strategy.base import STRATEGIES, Strategy


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    """Uniform samples from the space, without repeating an architecture while avoidable.

    It never looks at the results, so it serves any number of objectives.
    """

    max_objectives = None

    def ask(self) -> Architecture:
        return self.sample_unseen()
