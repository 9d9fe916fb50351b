"""Local search (hill climbing) with random restarts; White et al., UAI 2021, show it is a
strong baseline on NAS benchmarks whose neighbourhoods are small."""

from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Observation, Strategy


@STRATEGIES.register("local")
class LocalSearch(Strategy):
    """First-improvement hill climbing over one-decision neighbours, restarting at optima.

    A climb starts from the best of ``initial`` random samples. Its neighbours are evaluated
    in random order; the first that beats the current architecture becomes current and the
    climb continues from there. When every neighbour has been told and none is better, the
    current architecture is a local optimum and a new climb starts from fresh samples.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, initial: int = 10) -> None:
        super().__init__(space, seed)
        self.initial = max(1, initial)
        self.current: Observation | None = None
        self._queue: list[Architecture] = []  # neighbours of current not yet proposed
        self._waiting: set[Architecture] = set()  # proposed neighbours not yet told
        self._starts: list[Observation] = []  # told samples of the restart in progress
        self._start_asked = 0

    def ask(self) -> Architecture:
        if self.current is not None and self._queue:
            arch = self._queue.pop()
            self._waiting.add(arch)
            self.seen.add(arch)
            return arch
        # restarting, or all neighbours are out with parallel workers: explore
        self._start_asked += 1
        return self.sample_unseen()

    def _climb_from(self, observation: Observation) -> None:
        self.current = observation
        neighbours = [a for a in self.space.neighbours(observation.arch) if a not in self.seen]
        order = self.rng.permutation(len(neighbours))
        self._queue = [neighbours[int(i)] for i in order]
        self._waiting = set()
        self._starts = []
        self._start_asked = 0

    def _restart(self) -> None:
        self.current = None
        self._starts = []
        self._start_asked = 0

    def _observe(self, observation: Observation) -> None:
        arch, value = observation.arch, observation.objective
        if arch in self._waiting:
            self._waiting.discard(arch)
            if value is not None and value > self.current.objective:
                self._climb_from(observation)
            elif not self._queue and not self._waiting:
                self._restart()  # local optimum
            return
        if value is not None:
            self._starts.append(observation)
        if self.current is None and (
            len(self._starts) >= self.initial
            or (self._starts and self._start_asked >= self.initial)
        ):
            self._climb_from(max(self._starts, key=lambda o: o.objective))
