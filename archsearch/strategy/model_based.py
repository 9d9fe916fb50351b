"""What model-based strategies share: warm-up, the refit schedule, candidates and the pick.

BANANAS and predictor-guided evolution differ in the model they fit and in how they choose
among candidates; everything else (when to sample at random, when to refit from scratch or
train on from the current weights, how to make candidates none of which was proposed
before, how to skip candidates isomorphic to a proposed architecture, and how to make a
batch of parallel proposals diverse) lives here once.

**Batches: the constant liar.** When ``ask()`` runs while earlier proposals are pending
(asked, not told: other workers are evaluating them), the model knows nothing about them,
so it would rank their near-copies (the rest of the same neighbourhood) as high as it
ranked them, and a batch of ``N`` would be ``N`` variations of one choice. Instead the
proposal is made from a model that has been told a *fantasy* for every pending
architecture: the worst objective observed so far, the "constant liar" CL-min of
Ginsbourger, Le Riche & Carraro ("Kriging is well-suited to parallelize optimization",
2010). A model that believes the pending architectures to be bad lowers what it predicts
around them, so the next proposal goes elsewhere; when their real results come, the
fantasies are forgotten. CL-min rather than the kriging believer (the model's own
prediction as the fantasy): a neural predictor trained towards what it already predicts
barely changes, and a ranking predictor (GATES) has no prediction on the objective's
scale to believe; Ginsbourger et al. found CL-min the most exploratory of their liars,
which is what a batch needs. ``benchmarks/batch_diversity.py`` measures it
(``benchmarks/results/batch_diversity.txt``).

The fantasy model is a copy of the real one, trained on for ``update_steps`` updates (the
warm start of the refit schedule) on the successes plus the fantasies, so that a batched
ask costs about what a refit does; the real model, and therefore the sequence of fits and
of random draws, is the one a sequential search has. With nothing pending no copy is made
and a proposal is exactly a sequential search's. ``fantasy="none"`` turns this off (the
batch then is the model's ``N`` best distinct candidates, as before).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import Observation, Strategy

#: how a model-based strategy treats pending proposals (see the module docstring)
FANTASIES = ("worst", "none")


def check_fantasy(fantasy: str, allowed: tuple[str, ...] = FANTASIES) -> str:
    """``fantasy`` if it is one of ``allowed``, else an :class:`ArchsearchError` naming them."""
    if fantasy not in allowed:
        raise ArchsearchError(f"unknown fantasy {fantasy!r}; fantasies: {list(allowed)}")
    return fantasy


class ModelBasedStrategy(Strategy):
    """A strategy that fits a predictor on its results and proposes from its predictions.

    * The first ``initial`` proposals are uniform samples (none when at least ``initial``
      results were told before, as in a warm start).
    * Afterwards, whenever results arrived since the model last learned, the model learns
      from every successful result: from scratch (:meth:`new_model`) each time the number
      of results has doubled, and otherwise by training on for ``update_steps`` updates from
      its current weights, which keeps a proposal cheap on a CPU. Failed results stay out of
      the model and are not proposed again.
    * :meth:`propose_from` then chooses among candidates, usually via :meth:`pick`; while
      proposals are pending it does so with a model that believes them to be the worst
      result so far (``fantasy="worst"``, see the module docstring).
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        initial: int,
        update_steps: int,
        fantasy: str = "worst",
    ) -> None:
        super().__init__(space, seed)
        self.initial = initial
        self.update_steps = update_steps
        self.fantasy = check_fantasy(fantasy)
        self._asked = 0
        self._model: Any = None
        self._fitted_on = -1  # number of successful results the model has learned from
        self._scratch_on = 0  # ... when it was last fitted from scratch
        self._isomorphs = IsomorphismFilter(space)

    def new_model(self) -> Any:
        """A fresh, unfitted predictor (seeded from ``self.rng``)."""
        raise NotImplementedError

    def propose_from(self, successes: list[Observation]) -> Architecture:
        """The next proposal, once the model has learned from ``successes``."""
        raise NotImplementedError

    def ask(self) -> Architecture:
        self._asked += 1
        successes = [o for o in self.history if o.objective is not None]
        if len(successes) < 2 or (self._asked <= self.initial and len(successes) < self.initial):
            return self.sample_unseen()
        if self._fitted_on != len(successes):
            self._fit(successes)
        fantasised = self._fantasy_model(successes)
        if fantasised is None:  # nothing pending: exactly a sequential search's proposal
            return self.propose_from(successes)
        real, self._model = self._model, fantasised
        try:
            return self.propose_from(successes)
        finally:
            self._model = real

    def _fantasy_model(self, successes: list[Observation]) -> Any:
        """A copy of the model trained on for ``update_steps`` updates on ``successes`` plus
        every pending architecture at the worst objective told (the constant liar, see the
        module docstring); None when nothing is pending or fantasies are off.

        A copy, so that the real model (and the refit schedule, and its random state) stay
        what they are without pending proposals.
        """
        if self.fantasy == "none" or not self._pending:
            return None
        told = {o.arch for o in successes}  # membership only: never iterated
        pending = [arch for arch in self.pending if arch not in told]
        if not pending:
            return None
        archs = [o.arch for o in successes] + pending
        scores = [o.objective for o in successes] + self.fantasy_scores(successes, pending)
        model = copy.deepcopy(self._model)
        model.partial_fit(archs, scores, self.update_steps)
        return model

    def fantasy_scores(
        self, successes: list[Observation], pending: list[Architecture]
    ) -> list[float]:
        """The objective the fantasy model is told for each pending architecture: the worst
        success (CL-min; a subclass may lie otherwise)."""
        worst = min(o.objective for o in successes)
        return [worst] * len(pending)

    def pick(self, pool: list[Architecture], value: np.ndarray) -> Architecture:
        """The candidate of highest ``value`` not isomorphic to one proposed before."""
        return self._isomorphs.pick(self, pool, value)

    def _fit(self, successes: list[Observation]) -> None:
        archs, scores = [o.arch for o in successes], [o.objective for o in successes]
        if self._model is not None and len(successes) < 2 * self._scratch_on:
            self._model.partial_fit(archs, scores, self.update_steps)
        else:
            self._model = self.new_model()
            self._model.fit(archs, scores)
            self._scratch_on = len(successes)
        self._fitted_on = len(successes)


def mutation_candidates(
    strategy: Strategy, parents: list[Architecture], count: int
) -> list[Architecture]:
    """Never-proposed admissible candidates near ``parents`` (best first): every
    one-decision neighbour of the best, then ``count`` mutations of all parents, round robin.

    The full neighbourhood of the best makes the model, not chance, decide which of its
    neighbours to try; every other mutation changes two decisions rather than one, so that
    the pool reaches past the parents' immediate neighbourhoods.
    """
    space, rng = strategy.space, strategy.rng
    pool: dict[Architecture, None] = {}
    for child in space.neighbours(parents[0]):
        if child not in strategy.seen and strategy.admits(child):
            pool[child] = None
    local = len(pool)
    for k in range(4 * count):
        if len(pool) >= local + count:
            break
        child = space.mutate(parents[k % len(parents)], rng)
        if k % 2:
            child = space.mutate(child, rng)
        if child not in strategy.seen and strategy.admits(child):
            pool.setdefault(child, None)
    return list(pool)


class IsomorphismFilter:
    """Picks the best candidate that is not isomorphic to an architecture proposed before.

    On spaces that tell isomorphic cells apart (``isomorphism_hash``) such a candidate is a
    network already evaluated (or pending) under another name; evaluating it again would
    spend budget on nothing new. Candidates are hashed best first, so that usually one or
    two are hashed per proposal; hashes are cached. On other spaces the best is taken.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.hasher = space.isomorphism_hash if space.supports("isomorphism_hash") else None
        self._cache: dict[Architecture, str] = {}
        self._proposed: set[Architecture] = set()
        self._hashes: set[str] = set()

    def _digest(self, arch: Architecture) -> str:
        value = self._cache.get(arch)
        if value is None:
            value = self._cache[arch] = self.hasher(arch)
        return value

    def pick(self, strategy: Strategy, pool: list[Architecture], value: np.ndarray) -> Architecture:
        order = np.argsort(-np.asarray(value), kind="stable")
        choice = pool[int(order[0])]
        if self.hasher is not None:
            for arch in strategy.seen - self._proposed:  # proposed or told since last time
                self._hashes.add(self._digest(arch))
            self._proposed |= strategy.seen
            for i in order:
                if self._digest(pool[int(i)]) not in self._hashes:
                    choice = pool[int(i)]
                    break
        strategy.seen.add(choice)
        return choice
