"""Multi-objective regularized evolution: aging evolution (Real, Aggarwal, Huang & Le, AAAI
2019) whose tournament compares by Pareto rank.

Real et al.'s tournament takes the best of ``sample_size`` random members; with several
objectives "best" becomes the first non-dominated front of the sample under constrained
domination (as in NSGA-II, Deb et al. 2002). Ties within it go to the member that ranks
best in the whole population and then holds the most hypervolume alone there (its
exclusive contribution, as SMS-EMOA selects; Beume, Naujoks & Emmerich, EJOR 2007), or,
optionally, the largest crowding distance. Deb's crowding distance is infinite at a front's
ends, so it keeps breeding from the extremes (the tiniest cell, the largest one), which
rarely improve the trade-off that matters; a contribution is large where the front has a
gap. Aging is unchanged: the oldest member leaves, so no lucky early front point breeds
forever.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Observation
from archsearch.strategy.multi_objective import (
    MultiObjectiveStrategy,
    breeding_pool,
    constrained_ranks,
    contributions,
    crowded_winner,
    crowding,
)

TIE_BREAKS = ("contribution", "crowding")


@STRATEGIES.register("mo-evolution")
class MultiObjectiveEvolution(MultiObjectiveStrategy):
    """Aging evolution with a Pareto-rank tournament, for any number of objectives.

    * The first ``initial`` proposals are uniform samples (none after a warm start with at
      least ``initial`` results).
    * Each later proposal draws ``sample_size`` members of the population (only feasible
      ones once one is known, see :mod:`archsearch.strategy.multi_objective`); the winner
      is a member of the sample's first constrained-domination front: the one of best
      rank in the population, then of largest ``tie_break`` there (``"contribution"``:
      exclusive hypervolume within its front, against a point a tenth of the range below
      the population's worst values; ``"crowding"``: Deb's crowding distance). It is
      mutated in one decision into an architecture never proposed before.
    * Every told result with values joins the population (failed ones never do); beyond
      ``population_size`` the oldest leaves. With one objective this is exactly Real et
      al.'s algorithm.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        population_size: int = 30,
        sample_size: int = 5,
        initial: int = 10,
        tie_break: str = "contribution",
    ) -> None:
        super().__init__(space, seed)
        if tie_break not in TIE_BREAKS:
            raise ArchsearchError(
                f"unknown tie_break {tie_break!r}; tie breaks: {list(TIE_BREAKS)}"
            )
        if population_size < 1 or not 1 <= sample_size <= population_size or initial < 1:
            raise ArchsearchError(
                f"need population_size >= 1, 1 <= sample_size <= population_size and "
                f"initial >= 1, got {population_size}, {sample_size}, {initial}"
            )
        self.population_size = population_size
        self.sample_size = sample_size
        self.initial = initial
        self.tie_break = tie_break
        self.population: deque[Observation] = deque(maxlen=population_size)
        self._asked = 0
        self._order: tuple[np.ndarray, np.ndarray] | None = None  # ranks, tie-break score

    def ask(self) -> Architecture:
        self._asked += 1
        told = len(self.history)
        if not self.population or (self._asked <= self.initial and told < self.initial):
            return self.sample_unseen()
        members = list(self.population)
        if self._order is None:
            ranks = constrained_ranks(members)
            score = crowding if self.tie_break == "crowding" else contributions
            self._order = ranks, score(members, ranks)
        pool = breeding_pool(members)
        k = min(self.sample_size, len(pool))
        picks = [pool[int(i)] for i in self.rng.choice(len(pool), size=k, replace=False)]
        within = constrained_ranks([members[i] for i in picks])
        best = [i for i, rank in zip(picks, within, strict=True) if rank == 0]
        winner = crowded_winner(best, *self._order)
        return self.mutate_unseen(members[winner].arch)

    def _observe(self, observation: Observation) -> None:
        if observation.values is not None:
            self.population.append(observation)  # deque(maxlen) drops the oldest
            self._order = None
