"""Several trials at once: the study's asynchronous loop over a backend's workers.

Whenever a worker is free the strategy is asked again, while the other trials still run
(the strategy contract allows several asks before a tell, and the batch-aware strategies
propose for pending slots with fantasies, not copies); whenever an outcome arrives it is
committed and told at once. Every ask and tell gets the next number of the study's event
sequence (``asked_seq``, ``told_seq``) as it happens, so the stored order *is* what
happened, and a resume replays it exactly.

Faults are the study's to judge, since only the study process writes the study:

* a trial whose worker died (``lost``) is started again, up to ``retries`` times, on
  whichever worker is free, and then recorded as failed with the reason;
* a trial past ``trial_timeout`` is recorded as failed (not retried: it would time out again);
* Ctrl-C or SIGTERM: with ``on_interrupt="cancel"`` the running trials are cancelled and
  stay ``running`` in the file, and a resume starts them again; with ``"wait"`` no new trial
  starts and the running ones are awaited and recorded (a second interrupt cancels them);
* kill -9 of the study process: the workers notice and exit; the trials they were running
  stay ``running``, and a resume starts them again. Nothing finished is lost or re-run,
  because a result is committed before the next ask.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from archsearch.errors import ArchsearchError
from archsearch.parallel import Backend, Execution, Job, Outcome, Recipe
from archsearch.space.base import Architecture
from archsearch.study.storage import TrialRecord

if TYPE_CHECKING:
    from archsearch.study.study import Budget, Study


class Scheduler:
    """Runs a study's trials on a backend's workers until its budget is spent."""

    def __init__(self, study: Study, execution: Execution, backend: Backend | None = None):
        self.study = study
        self.execution = execution
        self._backend = backend
        self.running: dict[int, tuple[TrialRecord, Architecture, Job]] = {}

    def run(
        self,
        budget: Budget,
        seconds_left: Callable[[], float | None],
        finished: Callable[[TrialRecord], None],
    ) -> None:
        study = self.study
        backend = self._backend
        if backend is None:
            recipe = Recipe.of(study.space, study.evaluator, study.config)
            backend = self.execution.backend(recipe)
        try:
            self._loop(backend, budget, seconds_left, finished)
        except KeyboardInterrupt:
            if self.execution.on_interrupt == "wait" and self.running:
                self._drain(backend, finished)
            raise
        finally:
            backend.shutdown()

    def _loop(self, backend: Backend, budget: Budget, seconds_left, finished) -> None:
        while True:
            while len(self.running) < backend.slots and self._may_start(budget, seconds_left):
                self._start(backend, seconds_left())
            if not self.running:
                return
            for outcome in backend.wait():
                trial = self._settle(backend, outcome)
                if trial is not None:
                    finished(trial)

    def _may_start(self, budget: Budget, seconds_left: Callable[[], float | None]) -> bool:
        started = self.study.n_finished + len(self.running)
        if budget.evaluations is not None and started >= budget.evaluations:
            return False
        left = seconds_left()
        return left is None or left > 0

    def _start(self, backend: Backend, time_limit: float | None) -> None:
        trial, arch = self.study._start_trial()
        job = Job(trial.number, trial.arch_json, trial.seed, trial.fidelity, time_limit)
        self.running[trial.number] = (trial, arch, job)
        backend.submit(job)

    def _settle(self, backend: Backend, outcome: Outcome) -> TrialRecord | None:
        """Commit an outcome (or start a lost trial again); the finished trial, if any."""
        trial, arch, job = self.running[outcome.key]
        if outcome.status == "fatal":
            raise ArchsearchError(outcome.error)
        if outcome.status == "lost" and trial.attempts <= self.execution.retries:
            trial = self.study.storage.update_trial(trial.number, attempts=trial.attempts + 1)
            self.running[trial.number] = (trial, arch, job)
            _say(
                f"trial {trial.number} {outcome.error}; starting it again (attempt "
                f"{trial.attempts} of {self.execution.retries + 1})"
            )
            backend.submit(job)
            return None
        del self.running[outcome.key]
        error = outcome.error
        if outcome.status == "lost":
            error = f"{error} in each of {trial.attempts} attempts"
        result = outcome.result if outcome.status == "done" else None
        if outcome.status != "done" and error is None:
            error = outcome.status
        return self.study._finish_trial(trial, arch, result, error)

    def _drain(self, backend: Backend, finished: Callable[[TrialRecord], None]) -> None:
        """After an interrupt: record the running trials as they finish, starting none; a
        lost one stays running for a resume. A second interrupt stops waiting."""
        _say(
            f"interrupted; waiting for the {len(self.running)} running trials to finish "
            "(interrupt again to cancel them)"
        )
        try:
            while self.running:
                for outcome in backend.wait():
                    if outcome.status in ("done", "timeout"):
                        finished(self._settle(backend, outcome))
                    else:
                        del self.running[outcome.key]
        except KeyboardInterrupt:
            pass


def _say(message: str) -> None:
    print(f"archsearch: {message}", file=sys.stderr)
