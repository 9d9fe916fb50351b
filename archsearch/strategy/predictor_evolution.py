"""Predictor-guided evolution with a GATES ranker (Ning et al., ECCV 2020, sec. 4.4).

Evolution proposes by mutating good architectures; a predictor trained on everything
evaluated so far screens many such mutations and only the most promising is evaluated.
GATES trains its encoder with a pairwise ranking loss because a search only needs to pick
the better of candidates, not to know their accuracy.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Observation
from archsearch.strategy.model_based import ModelBasedStrategy, mutation_candidates


@STRATEGIES.register("predictor-evolution")
class PredictorGuidedEvolution(ModelBasedStrategy):
    """Aging evolution whose children are screened by a GATES ranking predictor.

    * The first ``initial`` proposals are uniform samples (none after a warm start with at
      least ``initial`` results); every successful result joins a population of at most
      ``population_size`` members, the oldest leaving first (Real et al., AAAI 2019).
    * Each proposal runs tournaments of ``sample_size`` members; the winners' mutations
      (``candidates`` of them, never proposed before) are ranked by the predictor and the
      top-ranked one is proposed.
    * The predictor (:class:`archsearch.predict.GATESPredictor`, pairwise hinge loss) learns
      from every successful result whenever results arrived since it last did: from
      scratch (``min_steps`` updates at least) each time the number of results has doubled,
      and otherwise by continuing to train for ``update_steps`` updates (a warm start),
      which keeps a proposal to a fraction of a second on a CPU. Its network is GATES'
      four-layer flow at learning rate 1e-3, smaller and shorter-trained than the
      stand-alone predictor's defaults: a search refits it after every result, and the
      benchmark figures (``benchmarks/results/nb201_search.txt``) were measured with it.

    * While proposals are pending (parallel asks), the candidates are ranked by a copy of
      the predictor trained on for ``update_steps`` updates with every pending architecture
      ranked with the worst result so far (``fantasy="worst"``, the constant liar of
      :mod:`archsearch.strategy.model_based`; ``"none"`` turns it off), so that a batch
      does not crowd one neighbourhood.

    Failed evaluations stay out of the population and the model, and are not proposed
    again. Spaces without a cell graph use GATES' one-hot fallback encoder.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial: int = 10,
        population_size: int = 30,
        sample_size: int = 5,
        candidates: int = 100,
        tournaments: int = 10,
        width: int = 32,
        epochs: int = 50,
        min_steps: int = 100,
        update_steps: int = 20,
        fantasy: str = "worst",
    ) -> None:
        super().__init__(space, seed, initial, update_steps, fantasy)
        if population_size < 1 or not 1 <= sample_size <= population_size:
            raise ArchsearchError(
                f"need population_size >= 1 and 1 <= sample_size <= population_size, "
                f"got {population_size}, {sample_size}"
            )
        if initial < 1 or candidates < 1 or tournaments < 1:
            raise ArchsearchError(
                f"need initial, candidates and tournaments >= 1; got {initial}, {candidates}, "
                f"{tournaments}"
            )
        self.population_size = population_size
        self.sample_size = sample_size
        self.candidates = candidates
        self.tournaments = tournaments
        self.width = width
        self.epochs = epochs
        self.min_steps = min_steps
        self.population: deque[Observation] = deque(maxlen=population_size)

    def propose_from(self, successes: list[Observation]) -> Architecture:
        parents = [self._tournament() for _ in range(self.tournaments)]
        pool = mutation_candidates(self, parents, self.candidates)
        if not pool:
            return self.sample_unseen()
        return self.pick(pool, self._model.predict(pool))

    def _tournament(self) -> Architecture:
        k = min(self.sample_size, len(self.population))
        picks = self.rng.choice(len(self.population), size=k, replace=False)
        return max((self.population[int(i)] for i in picks), key=lambda o: o.objective).arch

    def new_model(self) -> Any:
        from archsearch.predict import GATESPredictor  # torch only once a model is needed

        return GATESPredictor(
            self.space,
            seed=int(self.rng.integers(2**31)),
            loss="ranking",
            width=self.width,
            layers=4,
            lr=1e-3,
            epochs=self.epochs,
            min_steps=self.min_steps,
        )

    def _observe(self, observation: Observation) -> None:
        if observation.objective is not None:
            self.population.append(observation)
