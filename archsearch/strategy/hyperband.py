"""Hyperband: successive halving over a grid of aggressiveness (Li et al., JMLR 2018).

Successive halving (Jamieson & Talwalkar, 2016) evaluates ``n`` architectures at a small
fidelity (epochs, for a training evaluator), keeps the best ``1/eta`` of them, evaluates
those at ``eta`` times the fidelity, and so on up to the maximum. How small to start is a
trade-off no single choice wins, so Hyperband cycles through ``s_max + 1`` *brackets*, from
the most aggressive (many architectures, fidelity ``max / eta**s_max``) to plain search at
full fidelity (Li et al., Algorithm 1)::

    s_max = floor(log_eta(max_fidelity / min_fidelity))
    bracket s = s_max, ..., 0:  n = ceil((s_max + 1) / (s + 1) * eta**s),  r = max_fidelity / eta**s
        rung i = 0, ..., s:      n_i = floor(n / eta**i) architectures at fidelity r * eta**i

For ``eta=3``, ``min_fidelity=1``, ``max_fidelity=81`` the brackets are (81@1, 27@3, 9@9,
3@27, 1@81), (34@3, 11@9, 3@27, 1@81), (15@9, 5@27, 1@81), (8@27, 2@81) and (5@81).

**Ask/tell.** The study calls :meth:`~Hyperband.propose`, which returns ``(arch, fidelity)``,
and tells each result with its fidelity. A rung is promoted only when all its results are in
(failures count as results and are never promoted). While every open bracket waits for
results (parallel workers), the next bracket opens, so a proposal is always available.
After the last bracket the cycle starts again (Li et al.'s outer loop).

**Budget.** A study counts each evaluation as one unit whatever its fidelity, so a budget in
evaluations buys more low-fidelity evaluations than full ones: one Hyperband cycle of the
defaults (``1..27``, ``eta=3``) is 69 evaluations costing as much as 15.7 full ones (see
:meth:`Hyperband.cost`). A budget in seconds accounts for fidelity by itself.

**Without learning curves.** On an evaluator that ignores fidelity (the NAS-Bench-201 table
holds 200-epoch results only) a low-fidelity result already *is* the full one, so every
promotion re-queries a known value and what is left is uniform sampling of new
architectures: random search with fewer distinct evaluations. No bracket setting can beat
random search there, because the only thing Hyperband learns about an architecture is its
own result; the study warns when it meets such an evaluator. Measured over 100 seeds at 100
queries: 93.71 / 71.27 / 45.33 against random search's 93.74 / 71.47 / 45.48 (CIFAR-10 /
CIFAR-100 / ImageNet16-120, ``benchmarks/results/nb201_search.txt``). BOHB, whose model
learns *across* architectures, still beats random search on the same table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Observation, Strategy


def hyperband_brackets(
    min_fidelity: float, max_fidelity: float, eta: float = 3
) -> list[list[tuple[int, float]]]:
    """The Hyperband schedule: per bracket (most aggressive first), ``(n_i, r_i)`` per rung.

    Li et al. 2018, Algorithm 1 with ``R = max_fidelity / min_fidelity`` in units of the
    minimum fidelity. Fidelities are exact (not rounded) here.
    """
    if not eta > 1:
        raise ArchsearchError(f"hyperband needs eta > 1, got {eta!r}")
    if not 0 < min_fidelity <= max_fidelity:
        raise ArchsearchError(
            f"hyperband needs 0 < min_fidelity <= max_fidelity, got {min_fidelity!r}, "
            f"{max_fidelity!r}"
        )
    s_max = int(math.floor(math.log(max_fidelity / min_fidelity) / math.log(eta) + 1e-9))
    brackets = []
    for s in range(s_max, -1, -1):
        n = int(math.ceil((s_max + 1) / (s + 1) * eta**s - 1e-9))
        r = max_fidelity / eta**s
        brackets.append([(max(1, int(n / eta**i + 1e-9)), r * eta**i) for i in range(s + 1)])
    return brackets


@dataclass
class _Rung:
    size: int  # n_i: architectures this rung evaluates (fewer if earlier ones failed)
    fidelity: float
    queue: list[Architecture] = field(default_factory=list)  # promoted, not yet proposed
    issued: int = 0
    results: list[tuple[Architecture, float | None]] = field(default_factory=list)


@dataclass
class _Bracket:
    number: int  # how many brackets opened before this one
    rungs: list[_Rung]
    current: int = 0  # the rung being proposed or awaited

    @property
    def rung(self) -> _Rung:
        return self.rungs[self.current]


@STRATEGIES.register("hyperband")
class Hyperband(Strategy):
    """Hyperband with uniform sampling of each bracket's new architectures.

    Options: ``min_fidelity`` and ``max_fidelity`` (what the evaluator's ``fidelity`` means:
    epochs for a training evaluator; when both are integers, rung fidelities are rounded to
    integers), ``eta`` (keep the best ``1/eta`` at each rung; 3 as in both papers).

    Subclasses change only :meth:`_sample_new` (BOHB: a model instead of uniform samples).
    """

    uses_fidelity = True

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        min_fidelity: float = 1,
        max_fidelity: float = 27,
        eta: float = 3,
    ) -> None:
        super().__init__(space, seed)
        self.schedule = hyperband_brackets(min_fidelity, max_fidelity, eta)
        self.min_fidelity = min_fidelity
        self.max_fidelity = max_fidelity
        self.eta = eta
        integers = all(
            isinstance(v, int) and not isinstance(v, bool) for v in (min_fidelity, max_fidelity)
        )
        if integers:
            self.schedule = [
                [(n, max(min_fidelity, math.floor(r + 0.5))) for n, r in bracket]
                for bracket in self.schedule
            ]
        self._brackets: list[_Bracket] = []  # open brackets, oldest first
        self._opened = 0
        self._jobs: dict[tuple[Architecture, float], list[tuple[_Bracket, int]]] = {}

    def cost(self, fidelity: float | None) -> float:
        """An evaluation's cost in full evaluations: ``fidelity / max_fidelity``."""
        return 1.0 if fidelity is None else float(fidelity) / float(self.max_fidelity)

    # ---------------------------------------------------------------- proposing
    def ask(self) -> Architecture:
        """The architecture of :meth:`propose` (its fidelity is remembered for the tell)."""
        return self.propose()[0]

    def propose(self) -> tuple[Architecture, float]:
        for bracket in self._brackets:
            job = self._next_job(bracket)
            if job is not None:
                return job
        bracket = self._open_bracket()  # every open bracket waits for results
        job = self._next_job(bracket)
        assert job is not None  # a new bracket's first rung always has room
        return job

    def _open_bracket(self) -> _Bracket:
        shape = self.schedule[self._opened % len(self.schedule)]
        bracket = _Bracket(self._opened, [_Rung(n, r) for n, r in shape])
        self._opened += 1
        self._brackets.append(bracket)
        return bracket

    def _next_job(self, bracket: _Bracket) -> tuple[Architecture, float] | None:
        rung = bracket.rung
        if rung.queue:
            arch = rung.queue.pop(0)
        elif bracket.current == 0 and rung.issued < rung.size:
            arch = self._sample_new(rung.fidelity)
        else:
            return None  # waiting for this rung's results
        rung.issued += 1
        self.seen.add(arch)
        key = (arch, float(rung.fidelity))
        self._jobs.setdefault(key, []).append((bracket, bracket.current))
        return arch, rung.fidelity

    def _sample_new(self, fidelity: float) -> Architecture:
        """A new architecture for a bracket's first rung; Hyperband samples uniformly."""
        return self.sample_unseen()

    # ---------------------------------------------------------------- learning
    def _observe(self, observation: Observation) -> None:
        job = self._match(observation)
        if job is None:
            return  # a result this strategy did not ask for: history only
        bracket, index = job
        rung = bracket.rungs[index]
        rung.results.append((observation.arch, observation.objective))
        if index == bracket.current and not rung.queue and len(rung.results) == rung.issued:
            if index == 0 and rung.issued < rung.size:
                return  # the first rung still has architectures to sample
            self._promote(bracket)

    def _match(self, observation: Observation) -> tuple[_Bracket, int] | None:
        if observation.fidelity is not None:
            key = (observation.arch, float(observation.fidelity))
            waiting = self._jobs.get(key)
        else:  # told without a fidelity (plain ask/tell use): the oldest job of this arch
            key = next((k for k in self._jobs if k[0] == observation.arch), None)
            waiting = self._jobs.get(key) if key is not None else None
        if not waiting:
            return None
        job = waiting.pop(0)
        if not waiting:
            del self._jobs[key]
        return job

    def _promote(self, bracket: _Bracket) -> None:
        """Successive halving: the best ``n_{i+1}`` successes of a finished rung go on."""
        finished = bracket.rung
        if bracket.current + 1 == len(bracket.rungs):
            self._brackets.remove(bracket)
            return
        successes = [(arch, value) for arch, value in finished.results if value is not None]
        successes.sort(key=lambda item: -item[1])  # stable: ties go to the earlier result
        bracket.current += 1
        following = bracket.rung
        following.queue = [arch for arch, _ in successes[: following.size]]
        following.size = len(following.queue)
        if not following.queue:  # everything failed: nothing to promote
            self._brackets.remove(bracket)

    @property
    def best(self) -> Observation | None:
        """The best success at the highest fidelity that has one.

        A low-fidelity score is not comparable with a full one (ten epochs of training say
        less than a hundred), so the best is taken where the evidence is strongest.
        """
        done = [o for o in self.history if o.objective is not None]
        if not done:
            return None
        top = max(_fidelity_key(o.fidelity, self.max_fidelity) for o in done)
        return max(
            (o for o in done if _fidelity_key(o.fidelity, self.max_fidelity) == top),
            key=lambda o: o.objective,
        )


def _fidelity_key(fidelity: float | None, full: float) -> float:
    return float(full) if fidelity is None else float(fidelity)
