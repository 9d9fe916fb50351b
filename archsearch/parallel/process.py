"""Worker processes on this machine: the default backend of ``--workers N``.

Why not :class:`concurrent.futures.ProcessPoolExecutor`: a killed worker breaks the whole
pool (every pending future fails with ``BrokenProcessPool``, so the study could not tell
which trial killed it), and a running task cannot be cancelled, so ``--trial-timeout`` could
not be kept. Here each slot is one long-lived process with its own pipe: a dead worker is
noticed through its process sentinel and replaced, its trial alone is reported lost, and a
trial past its timeout is ended by killing its worker.

Workers are not forked from the study process: a fork would inherit the study's lock
descriptor (the lock would outlive a killed study in its workers) and torch's OpenMP
threads, which deadlock in a forked child. They are forked from a *fork server* instead, a
fresh process that has imported nothing but the worker's code (spawned where there is
none). A worker builds the evaluator once from the :class:`~archsearch.parallel.jobs.Recipe`
and keeps it, with its loaded data, for every trial; it ignores SIGINT (Ctrl-C reaches the
whole process group: the study decides whether running trials are awaited or cancelled) and
exits when the study process dies, kill -9 included.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.parallel.backend import KILLED, Backend, timed_out
from archsearch.parallel.jobs import Job, Outcome, Recipe, run_job

#: seconds an idle worker gets to exit on its own at shutdown before it is killed
EXIT_GRACE = 2.0


@dataclass
class _Slot:
    index: int
    process: Any
    conn: Connection
    job: Job | None = None
    started: float = 0.0


class ProcessBackend(Backend):
    """``slots`` spawned worker processes, one trial each at a time.

    ``cpus_per_trial`` caps the threads of the BLAS/OpenMP libraries in each worker (torch's
    intra-op threads are the evaluator's ``threads`` option, part of its recipe);
    ``gpus_per_trial`` gives each worker its own GPUs through ``CUDA_VISIBLE_DEVICES``, so
    that one trial runs per GPU of a multi-GPU machine.
    """

    name = "process"

    def __init__(
        self,
        recipe: Recipe,
        slots: int,
        *,
        trial_timeout: float | None = None,
        cpus_per_trial: float | None = None,
        gpus_per_trial: float = 0,
    ) -> None:
        super().__init__(slots, trial_timeout)
        self._recipe = recipe
        self._environments = _environments(self.slots, cpus_per_trial, gpus_per_trial)
        self._context = _context()
        self._queue: deque[Job] = deque()
        self._outcomes: list[Outcome] = []
        self._slots = [self._spawn(i) for i in range(self.slots)]

    def _spawn(self, index: int) -> _Slot:
        mine, theirs = self._context.Pipe()
        process = self._context.Process(
            target=worker_main,
            args=(theirs, self._recipe, self._environments[index]),
            name=f"archsearch-worker-{index}",
        )
        with _main_hidden(self._recipe.pickled is None):
            process.start()
        theirs.close()
        return _Slot(index, process, mine)

    def submit(self, job: Job) -> None:
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        for slot in self._slots:
            if not self._queue:
                return
            if slot.job is None:
                slot.job, slot.started = self._queue.popleft(), time.perf_counter()
                try:
                    slot.conn.send(slot.job)
                except OSError:  # it died while idle: its replacement takes the job
                    job = slot.job
                    self._replace(slot)
                    self._queue.appendleft(job)

    def wait(self) -> list[Outcome]:
        while not self._outcomes:
            busy = [slot for slot in self._slots if slot.job is not None]
            if not busy:
                raise RuntimeError("wait() with no job submitted")
            handles = [s.conn for s in busy] + [s.process.sentinel for s in busy]
            ready = wait(handles, timeout=self._next_deadline(busy))
            for slot in busy:
                self._collect(slot, ready)
            self._dispatch()
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    def _next_deadline(self, busy: list[_Slot]) -> float | None:
        if self.trial_timeout is None:
            return None
        soonest = min(slot.started for slot in busy) + self.trial_timeout
        return max(0.0, soonest - time.perf_counter())

    def _collect(self, slot: _Slot, ready: list[Any]) -> None:
        job = slot.job
        if slot.conn in ready or slot.conn.poll():
            try:
                outcome = slot.conn.recv()
            except (EOFError, OSError):  # it died while sending
                outcome = Outcome(job.key, "lost", error=self._death(slot))
                self._replace(slot)
            slot.job = None
            self._outcomes.append(outcome)
        elif slot.process.sentinel in ready:
            self._outcomes.append(Outcome(job.key, "lost", error=self._death(slot)))
            self._replace(slot)
        elif self.trial_timeout and time.perf_counter() - slot.started >= self.trial_timeout:
            self._outcomes.append(timed_out(job, self.trial_timeout))
            self._replace(slot)

    def _death(self, slot: _Slot) -> str:
        slot.process.join(timeout=EXIT_GRACE)
        code = slot.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory, or killed)" if -code == signal.SIGKILL else ""
            return f"{KILLED}: killed by {name}{hint}"
        return f"{KILLED}: it exited with status {code}"

    def _replace(self, slot: _Slot) -> None:
        """Kill the slot's worker (if it still runs) and start a fresh one in its place."""
        _stop(slot.process, kill=True)
        slot.conn.close()
        fresh = self._spawn(slot.index)
        slot.process, slot.conn, slot.job = fresh.process, fresh.conn, None

    def shutdown(self) -> None:
        for slot in self._slots:
            if slot.job is None:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)  # an idle worker exits on its own
        for slot in self._slots:
            _stop(slot.process, kill=slot.job is not None)
            slot.conn.close()
        self._slots = []
        self._queue.clear()


@contextmanager
def _main_hidden(hide: bool) -> Iterator[None]:
    """Start a worker without it re-running the user's main script.

    A spawned child imports the parent's ``__main__`` file first, so that pickled objects
    defined there resolve; a script without an ``if __name__ == "__main__":`` guard would
    then run its whole search again in every worker. A worker whose recipe is configuration
    needs nothing from it, so the main module's file is hidden from the spawn while the
    worker starts (a pickled recipe may need it: then it stays, and the guard is needed).
    """
    main = sys.modules.get("__main__")
    if not hide or main is None:
        yield
        return
    saved = {key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__}
    for key in saved:
        setattr(main, key, None) if key == "__spec__" else delattr(main, key)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)


def _context() -> Any:
    """A fork server that has imported the worker's code once: each worker is then forked
    from that clean process (no lock, no torch threads) in milliseconds, instead of a fresh
    interpreter importing archsearch (half a second of CPU each: 16 workers on 2 cores would
    wait seconds to start). Platforms without fork servers spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["archsearch.parallel.process"])
    return context


def _stop(process: Any, *, kill: bool) -> None:
    if kill and process.is_alive():
        process.kill()
    process.join(timeout=EXIT_GRACE)
    if process.is_alive():
        process.kill()
        process.join()


def _environments(
    slots: int, cpus_per_trial: float | None, gpus_per_trial: float
) -> list[dict[str, str]]:
    """The environment variables of each worker: thread caps and its own GPUs."""
    base: dict[str, str] = {}
    if cpus_per_trial is not None:
        if not (isinstance(cpus_per_trial, int | float) and cpus_per_trial >= 1):
            raise ArchsearchError(f"--cpus-per-trial must be >= 1 here, got {cpus_per_trial!r}")
        threads = str(int(cpus_per_trial))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            base[name] = threads
    if not gpus_per_trial:
        return [dict(base) for _ in range(slots)]
    if gpus_per_trial != int(gpus_per_trial) or gpus_per_trial < 0:
        raise ArchsearchError(
            f"--gpus-per-trial must be a whole number of GPUs for worker processes, got "
            f"{gpus_per_trial!r} (Ray's backend shares GPUs fractionally)"
        )
    per = int(gpus_per_trial)
    devices = _visible_gpus()
    if slots * per > len(devices):
        raise ArchsearchError(
            f"{slots} workers x {per} GPUs per trial need {slots * per} GPUs; "
            f"{len(devices)} are visible"
        )
    return [
        {**base, "CUDA_VISIBLE_DEVICES": ",".join(devices[i * per : (i + 1) * per])}
        for i in range(slots)
    ]


def _visible_gpus() -> list[str]:
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d for d in listed.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def worker_main(conn: Connection, recipe: Recipe, environment: dict[str, str]) -> None:
    """A worker's life: build the evaluator at the first job, then evaluate until told to
    stop, the pipe closes, or the study process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(environment)  # read by libraries the evaluator imports (torch, CUDA)
    if "OMP_NUM_THREADS" in environment:  # numpy's BLAS is loaded already, in the fork server
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(environment["OMP_NUM_THREADS"]))
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    built = None
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        if built is None:
            try:
                built = recipe.build()
            except Exception as exc:  # noqa: BLE001  (the study reports it and stops)
                conn.send(Outcome(job.key, "fatal", error=f"building the evaluator: {exc}"))
                continue
        outcome = run_job(*built, job)
        try:
            conn.send(outcome)
        except Exception as exc:  # noqa: BLE001  (an unpicklable result: pickled before sent)
            conn.send(Outcome(job.key, "done", error=f"the result cannot be sent back: {exc}"))


def _exit_with_parent() -> None:
    """End the worker when the study process is gone: its sentinel (a pipe whose other end
    the study holds, through the fork server) becomes readable when it dies, kill -9 too."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
    os._exit(1)
