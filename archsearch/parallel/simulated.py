"""Parallel workers in virtual time: what asynchrony costs a strategy, measured in seconds.

A table evaluator answers at once, but a real evaluation takes minutes, and with N workers
the strategy proposes while N - 1 results are outstanding. This backend evaluates each job
when it is submitted and holds its outcome back until a virtual clock reaches the job's
finish time (its start plus a duration: the table's recorded training time, or any function
of the job and outcome), so that a study sees exactly the order of results N real workers
would give it. Ties finish in submission order, which keeps a run deterministic.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from archsearch.evaluate.base import Evaluator
from archsearch.parallel.backend import Backend, timed_out
from archsearch.parallel.jobs import Job, Outcome, run_job
from archsearch.space.base import SearchSpace

#: seconds a job takes in virtual time, given the job and what its evaluation gave
Duration = Callable[[Job, Outcome], float]


class SimulatedBackend(Backend):
    """``slots`` virtual workers whose jobs take ``duration(job, outcome)`` seconds."""

    name = "simulated"

    def __init__(
        self,
        space: SearchSpace,
        evaluator: Evaluator,
        slots: int,
        duration: Duration,
        trial_timeout: float | None = None,
    ) -> None:
        super().__init__(slots, trial_timeout)
        self.space, self.evaluator, self.duration = space, evaluator, duration
        self._clock = 0.0
        self._order = 0
        self._events: list[tuple[float, int, Outcome]] = []

    def submit(self, job: Job) -> None:
        outcome = run_job(self.space, self.evaluator, job)
        seconds = float(self.duration(job, outcome))
        if self.trial_timeout is not None and seconds > self.trial_timeout:
            seconds, outcome = self.trial_timeout, timed_out(job, self.trial_timeout)
        heapq.heappush(self._events, (self._clock + seconds, self._order, outcome))
        self._order += 1

    def wait(self) -> list[Outcome]:
        finish, _, outcome = heapq.heappop(self._events)
        self._clock = finish
        return [outcome]

    def now(self) -> float:
        return self._clock

    def shutdown(self) -> None:
        self._events.clear()
