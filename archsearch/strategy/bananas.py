"""BANANAS: Bayesian optimisation with neural architectures for NAS (White et al., AAAI 2021).

Algorithm 1 of the paper: after a few random architectures, every step fits an ensemble of
MLPs on the path encodings of all evaluated architectures, generates candidates by
mutating the best architectures so far, and evaluates the candidate that maximises an
acquisition function over the ensemble's mean and spread: independent Thompson sampling
(ITS, the paper's default, sec. 4) or an upper confidence bound.
"""

from __future__ import annotations

from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Observation
from archsearch.strategy.model_based import ModelBasedStrategy, mutation_candidates

ACQUISITIONS = ("its", "ucb")


@STRATEGIES.register("bananas")
class BANANAS(ModelBasedStrategy):
    """Ensemble-MLP Bayesian optimisation over mutations of the best architectures.

    * The first ``initial`` proposals are uniform samples (none when at least ``initial``
      results were told before, as in a warm start).
    * Afterwards, whenever results arrived since the model last learned (once per batch of
      tells), the ensemble (:class:`archsearch.predict.MLPEnsemble`, ``members`` networks)
      learns from every successful evaluation: from scratch each time the number of results
      has doubled, and otherwise by training on for ``update_steps`` updates from its
      current weights (a warm start, which keeps a proposal cheap on a CPU). Failed results
      are never treated as good: they stay out of the model and are not proposed again.
    * The candidates, none proposed before, are every one-decision neighbour of the best
      architecture plus ``candidates`` mutations of the ``parents`` best ones (one or two
      decisions each, alternately); the one with the best acquisition value that is not
      isomorphic to an architecture already proposed is proposed. ITS draws one value per
      candidate from ``N(mean, std^2)`` (White et al., sec. 4); UCB scores
      ``mean + ucb_beta * std``.
    * Several asks before a tell get distinct proposals (each excludes what was proposed)
      and diverse ones: while proposals are pending, the acquisition is computed from a
      copy of the ensemble trained on for ``update_steps`` updates with every pending
      architecture told the worst result so far (``fantasy="worst"``, the constant liar of
      :mod:`archsearch.strategy.model_based`; ``"none"`` turns it off).

    On spaces without a cell graph the path encoding falls back to one-hot (see
    :mod:`archsearch.space.encodings`), so the same defaults run everywhere. Torch is
    imported only when the model is first fitted.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial: int = 10,
        candidates: int = 100,
        parents: int = 10,
        acquisition: str = "its",
        ucb_beta: float = 1.0,
        encoding: str = "path",
        members: int = 5,
        update_steps: int = 20,
        fantasy: str = "worst",
    ) -> None:
        super().__init__(space, seed, initial, update_steps, fantasy)
        if acquisition not in ACQUISITIONS:
            raise ArchsearchError(
                f"unknown acquisition {acquisition!r}; acquisitions: {list(ACQUISITIONS)}"
            )
        if initial < 1 or candidates < 1 or parents < 1 or members < 2:
            raise ArchsearchError(
                f"need initial, candidates and parents >= 1 and members >= 2; got {initial}, "
                f"{candidates}, {parents}, {members}"
            )
        self.candidates = candidates
        self.parents = parents
        self.acquisition = acquisition
        self.ucb_beta = ucb_beta
        self.encoding = encoding
        self.members = members

    def new_model(self) -> Any:
        from archsearch.predict import MLPEnsemble  # torch only once a model is needed

        return MLPEnsemble(
            self.space,
            seed=int(self.rng.integers(2**31)),
            encoding=self.encoding,
            members=self.members,
        )

    def propose_from(self, successes: list[Observation]) -> Architecture:
        ranked = sorted(successes, key=lambda o: o.objective, reverse=True)
        pool = mutation_candidates(self, [o.arch for o in ranked[: self.parents]], self.candidates)
        if not pool:
            return self.sample_unseen()
        mean, std = self._model.predict(pool, return_std=True)
        if self.acquisition == "its":
            value = mean + std * self.rng.standard_normal(len(pool))
        else:
            value = mean + self.ucb_beta * std
        return self.pick(pool, value)
