"""Parallel and distributed evaluation: how a study runs several trials at once.

:class:`Execution` is how a study's trials are run (not what the study is: two runs of one
study may use different worker counts, and ``resume`` keeps or changes them); the backends
(:mod:`archsearch.parallel.backend`) run them. A study with one worker, no timeout and no
Ray evaluates in its own process, exactly as a sequential study always has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.parallel.backend import Backend, check_timeout, check_workers
from archsearch.parallel.jobs import Job, Outcome, Recipe

ON_INTERRUPT = ("cancel", "wait")

__all__ = ["ON_INTERRUPT", "Backend", "Execution", "Job", "Outcome", "Recipe"]


@dataclass(frozen=True)
class Execution:
    """Workers, backend and fault handling of a run.

    * ``workers``: trials evaluated at once; ``ray``: None for worker processes on this
      machine, ``"auto"`` or a cluster address for Ray (:mod:`~archsearch.parallel.ray_cluster`).
    * ``cpus_per_trial`` / ``gpus_per_trial``: the resources of one trial.
    * ``retries``: how many times a trial whose worker died is started again before it is
      recorded as failed; ``trial_timeout``: seconds after which a trial is cancelled and
      recorded as failed (not retried: it would time out again).
    * ``on_interrupt``: at Ctrl-C or SIGTERM, ``cancel`` the running trials (a resume runs
      them again) or ``wait`` for them to finish and record them (a second Ctrl-C cancels).
    """

    workers: int = 1
    ray: str | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float = 0
    retries: int = 2
    trial_timeout: float | None = None
    on_interrupt: str = "cancel"

    def __post_init__(self) -> None:
        check_workers(self.workers)
        check_timeout(self.trial_timeout)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ArchsearchError(f"--retries must be an integer >= 0, got {self.retries!r}")
        if self.on_interrupt not in ON_INTERRUPT:
            raise ArchsearchError(
                f"--on-interrupt must be one of {', '.join(ON_INTERRUPT)}, "
                f"got {self.on_interrupt!r}"
            )
        for name in ("cpus_per_trial", "gpus_per_trial"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise ArchsearchError(f"--{name.replace('_', '-')} must be >= 0, got {value!r}")
        if self.ray is not None and (not isinstance(self.ray, str) or not self.ray):
            raise ArchsearchError(f"--ray takes 'auto' or a cluster address, got {self.ray!r}")

    @property
    def in_process(self) -> bool:
        """True when trials run in the study's own process, one after the other."""
        return self.workers == 1 and self.ray is None and self.trial_timeout is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: Any, **overrides: Any) -> Execution:
        """The stored settings of a study (its last run's), with ``overrides`` not None."""
        known = {f.name for f in fields(cls)}
        base = dict(stored) if isinstance(stored, Mapping) else {}
        base = {k: v for k, v in base.items() if k in known}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def backend(self, recipe: Recipe) -> Backend:
        """The backend these settings name, started."""
        options = {
            "trial_timeout": self.trial_timeout,
            "cpus_per_trial": self.cpus_per_trial,
            "gpus_per_trial": self.gpus_per_trial,
        }
        if self.ray is not None:
            from archsearch.parallel.ray_cluster import RayBackend

            return RayBackend(recipe, self.workers, address=self.ray, **options)
        from archsearch.parallel.process import ProcessBackend

        return ProcessBackend(recipe, self.workers, **options)
