"""Regularized (aging) evolution, Real et al., AAAI 2019, Algorithm 1."""

from collections import deque

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Observation, Strategy


@STRATEGIES.register("evolution")
class RegularizedEvolution(Strategy):
    """Tournament selection with aging.

    The first ``population_size`` proposals are uniform samples. Afterwards each proposal
    mutates one decision of the best of ``sample_size`` members drawn uniformly from the
    population; every told result joins the population and the *oldest* member leaves, so
    that a lucky early architecture cannot dominate forever (the "regularisation").
    Children that were already proposed are re-drawn: on a deterministic benchmark a
    repeat teaches nothing and only spends budget.
    """

    def __init__(
        self, space: SearchSpace, seed: int = 0, population_size: int = 10, sample_size: int = 3
    ) -> None:
        super().__init__(space, seed)
        if population_size < 1 or not 1 <= sample_size <= population_size:
            raise ArchsearchError(
                f"need population_size >= 1 and 1 <= sample_size <= population_size, "
                f"got {population_size}, {sample_size}"
            )
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[Observation] = deque(maxlen=population_size)
        self._asked = 0

    def ask(self) -> Architecture:
        self._asked += 1
        if self._asked <= self.population_size or not self.population:
            return self.sample_unseen()
        k = min(self.sample_size, len(self.population))
        picks = self.rng.choice(len(self.population), size=k, replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda o: o.objective)
        return self.mutate_unseen(parent.arch)

    def _observe(self, observation: Observation) -> None:
        if observation.objective is not None:
            self.population.append(observation)  # deque(maxlen) drops the oldest
