"""BANANAS: Bayesian optimisation with neural architectures for NAS (White et al., AAAI 2021).

Algorithm 1 of the paper: after a few random architectures, every step fits an ensemble of
MLPs on the path encodings of all evaluated architectures, generates candidates by
mutating the best architectures so far, and evaluates the candidate that maximises an
acquisition function over the ensemble's mean and spread: independent Thompson sampling
(ITS, the paper's default, sec. 4) or an upper confidence bound.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Strategy

ACQUISITIONS = ("its", "ucb")


@STRATEGIES.register("bananas")
class BANANAS(Strategy):
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
    * Several asks before a tell get distinct proposals: each excludes what was proposed.

    On spaces without a cell graph the path encoding falls back to one-hot (see
    :mod:`archsearch.space.encodings`), so the same defaults run everywhere. Torch is
    imported only when the model is first fitted.
    """

    name = "bananas"

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
    ) -> None:
        super().__init__(space, seed)
        if acquisition not in ACQUISITIONS:
            raise ArchsearchError(
                f"unknown acquisition {acquisition!r}; acquisitions: {list(ACQUISITIONS)}"
            )
        if initial < 1 or candidates < 1 or parents < 1 or members < 2:
            raise ArchsearchError(
                f"need initial, candidates and parents >= 1 and members >= 2; got {initial}, "
                f"{candidates}, {parents}, {members}"
            )
        self.initial = initial
        self.candidates = candidates
        self.parents = parents
        self.acquisition = acquisition
        self.ucb_beta = ucb_beta
        self.encoding = encoding
        self.members = members
        self.update_steps = update_steps
        self._asked = 0
        self._model = None
        self._fitted_on = -1  # number of successful results the model has learned from
        self._scratch_on = 0  # ... when it was last fitted from scratch
        self._isomorphs = IsomorphismFilter(space)

    def options(self) -> dict[str, Any]:
        return {
            "initial": self.initial,
            "candidates": self.candidates,
            "parents": self.parents,
            "acquisition": self.acquisition,
            "ucb_beta": self.ucb_beta,
            "encoding": self.encoding,
            "members": self.members,
            "update_steps": self.update_steps,
        }

    # ------------------------------------------------------------------ asking
    def ask(self) -> Architecture:
        self._asked += 1
        successes = [o for o in self.history if o.objective is not None]
        if len(successes) < 2 or (self._asked <= self.initial and len(successes) < self.initial):
            return self.sample_unseen()
        if self._fitted_on != len(successes):
            self._fit(successes)
        ranked = sorted(successes, key=lambda o: o.objective, reverse=True)
        pool = mutation_candidates(self, [o.arch for o in ranked[: self.parents]], self.candidates)
        if not pool:
            return self.sample_unseen()
        mean, std = self._model.predict(pool, return_std=True)
        if self.acquisition == "its":
            value = mean + std * self.rng.standard_normal(len(pool))
        else:
            value = mean + self.ucb_beta * std
        return self._isomorphs.pick(self, pool, value)

    def _fit(self, successes: list) -> None:
        archs, scores = [o.arch for o in successes], [o.objective for o in successes]
        if self._model is not None and len(successes) < 2 * self._scratch_on:
            self._model.partial_fit(archs, scores, self.update_steps)
        else:
            from archsearch.predict import MLPEnsemble  # torch only once a model is needed

            self._model = MLPEnsemble(
                self.space,
                seed=int(self.rng.integers(2**31)),
                encoding=self.encoding,
                members=self.members,
            )
            self._model.fit(archs, scores)
            self._scratch_on = len(successes)
        self._fitted_on = len(successes)


def mutation_candidates(
    strategy: Strategy, parents: list[Architecture], count: int
) -> list[Architecture]:
    """Never-proposed candidates near ``parents`` (best first): every one-decision neighbour
    of the best, then ``count`` mutations of all parents, round robin.

    The full neighbourhood of the best makes the model, not chance, decide which of its
    neighbours to try; every other mutation changes two decisions rather than one, so that
    the pool reaches past the parents' immediate neighbourhoods.
    """
    space, rng = strategy.space, strategy.rng
    pool: dict[Architecture, None] = {}
    for child in space.neighbours(parents[0]):
        if child not in strategy.seen:
            pool[child] = None
    local = len(pool)
    for k in range(4 * count):
        if len(pool) >= local + count:
            break
        child = space.mutate(parents[k % len(parents)], rng)
        if k % 2:
            child = space.mutate(child, rng)
        if child not in strategy.seen:
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
        self.hasher = getattr(space, "isomorphism_hash", None)
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
