"""NSGA-II (Deb, Pratap, Agarwal & Meyarivan, IEEE Transactions on Evolutionary Computation
2002), in its steady-state form for ask/tell.

The generational algorithm breeds ``N`` children from a population of ``N`` and then keeps
the best ``N`` of both (elitism by non-dominated sorting and crowding distance). With a NAS
budget of a hundred or two evaluations a generation of 50 children is half the search, and
parallel workers would idle at every generation boundary. The steady-state variant
(Durillo, Nebro, Luna & Alba, "On the effect of the steady-state selection scheme in
multi-objective genetic algorithms", EMO 2009) breeds one child per ask from whatever has
been told so far and folds each told result into the population at once, which they find
converges faster at equal evaluations. Selection, variation and survival are Deb's.
"""

from __future__ import annotations

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Observation
from archsearch.strategy.multi_objective import (
    MultiObjectiveStrategy,
    breeding_pool,
    constrained_ranks,
    crowded_winner,
    crowding,
    environmental_selection,
    uniform_crossover,
)


@STRATEGIES.register("nsga2")
class NSGA2(MultiObjectiveStrategy):
    """Steady-state NSGA-II with constrained domination, for any number of objectives.

    * The first ``initial`` proposals are uniform samples (none after a warm start with at
      least ``initial`` results); from then on every ask breeds a child from the results
      told so far, so a small budget is not spent waiting for a full first generation.
    * Parents come from binary tournaments under Deb's crowded comparison: the lower
      constrained-domination rank wins (feasible before infeasible, see
      :mod:`archsearch.strategy.multi_objective`), then the larger crowding distance.
      Failed evaluations never enter the population, and infeasible results are never
      parents once a feasible one is known.
    * With probability ``crossover_rate`` the child takes each decision from either parent
      (uniform crossover, built and checked through the space); then each decision is
      mutated with probability ``mutation_rate / #decisions`` (the usual ``1/n`` rate, by
      the space's own :meth:`~archsearch.space.base.SearchSpace.mutate`). A child proposed
      before is mutated until it is new.
    * Each told result joins the population; once it holds more than ``population_size``
      results, the most crowded member of the worst front leaves (Deb's environmental
      selection, one member at a time).
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        population_size: int = 20,
        initial: int = 10,
        crossover_rate: float = 0.9,
        mutation_rate: float = 1.0,
    ) -> None:
        super().__init__(space, seed)
        if population_size < 2 or initial < 1:
            raise ArchsearchError(
                f"need population_size >= 2 and initial >= 1, got {population_size}, {initial}"
            )
        if not 0.0 <= crossover_rate <= 1.0 or mutation_rate < 0.0:
            raise ArchsearchError(
                f"need 0 <= crossover_rate <= 1 and mutation_rate >= 0, got {crossover_rate}, "
                f"{mutation_rate}"
            )
        self.population_size = population_size
        self.initial = initial
        self.crossover_rate = crossover_rate
        self.mutation_rate = mutation_rate
        self.population: list[Observation] = []
        self._asked = 0
        self._order: tuple[np.ndarray, np.ndarray] | None = None  # ranks, crowding

    def ask(self) -> Architecture:
        self._asked += 1
        told = len(self.history)
        if len(self.population) < 2 or (self._asked <= self.initial and told < self.initial):
            return self.sample_unseen()
        first = self._tournament()
        second = self._tournament(avoid=first)
        child = None
        if self.rng.random() < self.crossover_rate:
            child = uniform_crossover(
                self.space, self.population[first].arch, self.population[second].arch, self.rng
            )
        if child is None:
            child = self.population[first].arch
        mutations = self.rng.binomial(
            len(self.space.decisions), min(1.0, self.mutation_rate / len(self.space.decisions))
        )
        for _ in range(int(mutations)):
            child = self.space.mutate(child, self.rng)
        return self.propose_child(child)

    def _tournament(self, avoid: int | None = None) -> int:
        """Deb's binary tournament over two distinct members (other than ``avoid`` when the
        population allows)."""
        if self._order is None:
            ranks = constrained_ranks(self.population)
            self._order = ranks, crowding(self.population, ranks)
        pool = breeding_pool(self.population)
        if len(pool) > 2:
            pool = [i for i in pool if i != avoid]
        picks = self.rng.choice(len(pool), size=min(2, len(pool)), replace=False)
        return crowded_winner([pool[int(i)] for i in picks], *self._order)

    def _observe(self, observation: Observation) -> None:
        if observation.values is None:
            return
        self.population.append(observation)
        if len(self.population) > self.population_size:
            keep = environmental_selection(self.population, self.population_size)
            self.population = [self.population[i] for i in keep]
        self._order = None
