"""What model-based strategies share: warm-up, the refit schedule, candidates and the pick.

BANANAS and predictor-guided evolution differ in the model they fit and in how they choose
among candidates; everything else (when to sample at random, when to refit from scratch or
train on from the current weights, how to make candidates none of which was proposed
before, and how to skip candidates isomorphic to a proposed architecture) lives here once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import Observation, Strategy


class ModelBasedStrategy(Strategy):
    """A strategy that fits a predictor on its results and proposes from its predictions.

    * The first ``initial`` proposals are uniform samples (none when at least ``initial``
      results were told before, as in a warm start).
    * Afterwards, whenever results arrived since the model last learned, the model learns
      from every successful result: from scratch (:meth:`new_model`) each time the number
      of results has doubled, and otherwise by training on for ``update_steps`` updates from
      its current weights, which keeps a proposal cheap on a CPU. Failed results stay out of
      the model and are not proposed again.
    * :meth:`propose_from` then chooses among candidates, usually via :meth:`pick`.
    """

    def __init__(self, space: SearchSpace, seed: int, initial: int, update_steps: int) -> None:
        super().__init__(space, seed)
        self.initial = initial
        self.update_steps = update_steps
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
        return self.propose_from(successes)

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
