"""The backend contract: how a study evaluates several trials at once.

A backend owns ``slots`` workers. The study submits at most ``slots`` jobs at a time and
waits for outcomes; whenever one arrives it settles the trial (writes it, tells the
strategy) and submits the next, so workers never wait for each other (asynchronous
parallelism, as in Ray Tune or ASHA, rather than synchronous batches). Every backend:

* returns exactly one outcome per submitted job, in the order the jobs finish;
* turns a worker's death (killed, out of memory, its node lost) into a ``lost`` outcome
  and replaces the worker, so that the study decides whether to retry;
* cancels a job that runs past ``trial_timeout`` seconds (a ``timeout`` outcome);
* never writes the study: only the study process does (:mod:`archsearch.parallel.jobs`).

Backends: :class:`~archsearch.parallel.process.ProcessBackend` (worker processes on this
machine), :class:`~archsearch.parallel.ray_cluster.RayBackend` (tasks on a Ray cluster) and
:class:`~archsearch.parallel.simulated.SimulatedBackend` (virtual time, for measuring what
asynchrony costs a strategy without waiting for it).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.parallel.jobs import Job, Outcome

#: what a worker's death is called in a trial's error, with the signal that ended it
KILLED = "its worker died"


class Backend(ABC):
    """Evaluates submitted jobs on ``slots`` workers; see the module docstring."""

    name: str = "backend"

    def __init__(self, slots: int, trial_timeout: float | None = None) -> None:
        self.slots = check_workers(slots)
        self.trial_timeout = check_timeout(trial_timeout)

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Start ``job`` (the study never has more than ``slots`` jobs in flight)."""

    @abstractmethod
    def wait(self) -> list[Outcome]:
        """Block until at least one submitted job has an outcome; return every one there is."""

    @abstractmethod
    def shutdown(self) -> None:
        """Cancel what is still running and release the workers."""

    def now(self) -> float:
        """The backend's clock in seconds (virtual time for a simulation)."""
        return time.perf_counter()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def check_workers(workers: Any) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ArchsearchError(f"--workers must be an integer >= 1, got {workers!r}")
    return workers


def check_timeout(seconds: Any) -> float | None:
    if seconds is None:
        return None
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not (math.isfinite(seconds) and seconds > 0)
    ):
        raise ArchsearchError(f"--trial-timeout must be a number of seconds > 0, got {seconds!r}")
    return float(seconds)


def timed_out(job: Job, seconds: float) -> Outcome:
    return Outcome(job.key, "timeout", error=f"exceeded the trial timeout of {seconds:g} s")
