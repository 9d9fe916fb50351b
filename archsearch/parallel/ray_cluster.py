"""Trials as Ray tasks: one machine's cores and GPUs, or a cluster's.

Ray (an optional extra: ``pip install 'archsearch[ray]'``) schedules each trial as a task
with the resources ``--cpus-per-trial`` and ``--gpus-per-trial`` ask for, so that one trial
runs per GPU of a node, on whichever node has them free. Ray's own retries are switched off
(``max_retries=0``): the study counts attempts, retries a trial whose worker died (a killed
process, an out-of-memory kill, a lost node) and records it as failed when the attempts are
spent, in the study file, where ``show`` and ``resume`` see it.

The recipe is put into Ray's object store once; a worker process builds the evaluator from
it at its first task and keeps it for the next tasks it runs (Ray reuses worker processes),
so a table is loaded once per worker, not once per trial.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.parallel.backend import KILLED, Backend, timed_out
from archsearch.parallel.jobs import Job, Outcome, Recipe, run_job

#: the evaluators a Ray worker process has built, by recipe digest
_BUILT: dict[str, Any] = {}


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ArchsearchError(
            "the Ray backend needs Ray: pip install 'archsearch[ray]' (or use the local "
            "process backend: --workers N without --ray)"
        ) from None
    return ray


def ray_task(recipe: Recipe, digest: str, job: Job) -> Outcome:
    """The task a Ray worker runs: build the evaluator once per process, evaluate ``job``."""
    built = _BUILT.get(digest)
    if built is None:
        try:
            built = _BUILT[digest] = recipe.build()
        except Exception as exc:  # noqa: BLE001  (the study reports it and stops)
            return Outcome(job.key, "fatal", error=f"building the evaluator: {exc}")
    return run_job(*built, job)


class RayBackend(Backend):
    """Up to ``slots`` trials at once as Ray tasks.

    ``address``: ``"auto"`` joins the cluster this machine belongs to (``ray start``), or
    starts a local Ray instance when there is none; any other value is a cluster's address.
    A local instance started here gets at least ``slots * cpus_per_trial`` logical CPUs, so
    that ``--workers N`` runs N trials at once whatever the core count (the trials' own
    threads decide how busy the cores get); it is shut down with the backend.
    """

    name = "ray"

    def __init__(
        self,
        recipe: Recipe,
        slots: int,
        *,
        address: str | None = "auto",
        trial_timeout: float | None = None,
        cpus_per_trial: float | None = None,
        gpus_per_trial: float = 0,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(slots, trial_timeout)
        ray = self._ray = import_ray()
        cpus = 1.0 if cpus_per_trial is None else float(cpus_per_trial)
        if cpus <= 0 or gpus_per_trial < 0:
            raise ArchsearchError(
                f"--cpus-per-trial must be > 0 and --gpus-per-trial >= 0, got {cpus_per_trial!r}"
                f" and {gpus_per_trial!r}"
            )
        self._started_here = False
        if not ray.is_initialized():
            self._connect(address or "auto", slots * cpus, init_options or {})
        self._remote = ray.remote(max_retries=0)(ray_task).options(
            num_cpus=cpus, num_gpus=gpus_per_trial
        )
        self._recipe = ray.put(recipe)
        self._digest = hashlib.sha256(pickle.dumps(recipe)).hexdigest()
        self._running: dict[Any, tuple[Job, float]] = {}

    def _connect(self, address: str, cpus: float, options: dict[str, Any]) -> None:
        ray = self._ray
        quiet = {"logging_level": "ERROR", "log_to_driver": False, **options}
        if address == "auto":
            try:
                ray.init(address="auto", **quiet)
                return
            except ConnectionError:
                pass  # no cluster running here: start a local instance
            cores = os.cpu_count() or 1
            ray.init(num_cpus=max(cores, int(cpus + 0.999)), include_dashboard=False, **quiet)
            self._started_here = True
            return
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ArchsearchError(
                f"cannot connect to the Ray cluster at {address}: {exc}"
            ) from None

    def submit(self, job: Job) -> None:
        ref = self._remote.remote(self._recipe, self._digest, job)
        self._running[ref] = (job, time.perf_counter())

    def wait(self) -> list[Outcome]:
        ray = self._ray
        if not self._running:
            raise RuntimeError("wait() with no job submitted")
        while True:
            ready, _ = ray.wait(list(self._running), num_returns=1, timeout=self._timeout())
            if ready:
                ready, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
                return [self._outcome(ref) for ref in ready]
            late = self._late()
            if late:
                return late

    def _timeout(self) -> float | None:
        if self.trial_timeout is None:
            return None
        soonest = min(started for _, started in self._running.values()) + self.trial_timeout
        return max(0.0, soonest - time.perf_counter())

    def _late(self) -> list[Outcome]:
        """Cancel the jobs past the trial timeout (their worker processes are killed)."""
        now, late = time.perf_counter(), []
        for ref, (job, started) in list(self._running.items()):
            if now - started >= self.trial_timeout:
                self._ray.cancel(ref, force=True)
                del self._running[ref]
                late.append(timed_out(job, self.trial_timeout))
        return late

    def _outcome(self, ref: Any) -> Outcome:
        ray = self._ray
        job, _ = self._running.pop(ref)
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the task itself raised (not the trial)
            return Outcome(job.key, "done", error=f"the Ray task failed: {exc.cause!r}")
        except ray.exceptions.RayError as exc:  # worker crashed, out of memory, node lost
            reason = type(exc).__name__
            return Outcome(job.key, "lost", error=f"{KILLED}: Ray reported {reason}")

    def shutdown(self) -> None:
        for ref in list(self._running):
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._started_here:
            self._ray.shutdown()
            self._started_here = False
