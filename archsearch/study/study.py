"""The study: runs a strategy with an evaluator under a budget and records every trial.

Each finished evaluation is committed to storage before the next proposal, so a study
killed at any point (kill -9 during an evaluation included) loses only the evaluation in
flight. A study is opened either to *read* it (``show``, ``export``: read-only, no lock, no
replay, never a write) or to *run* it (``search``, ``resume``): the runner takes
``study.lock`` first, then loads the stored state, rebuilds the components from the stored
configuration and replays the stored asks and tells through the strategy (see the strategy
contract), after which the search continues exactly where it stopped.

A study may *screen* before its strategy proposes (:mod:`archsearch.study.screening`): a cheap
evaluator ranks a seeded sample and the study evaluates the best of it first, telling the
strategy each result. Screened trials are stored with ``origin = "screen"`` and the ranking in
the meta ``screen_ranking``, so the replay marks them seen instead of asking the strategy.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.checks import PROBE_PREFIX, check_output_dir, check_seed
from archsearch.errors import ArchsearchError, StudyError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.parallel import Backend, Execution
from archsearch.parallel.jobs import evaluate
from archsearch.space.base import Architecture, SearchSpace
from archsearch.space.define_by_run import check_importable
from archsearch.space.stored import (
    DECISIONS,
    StoredSpace,
    decisions_from_meta,
    decisions_from_trials,
    decisions_to_meta,
)
from archsearch.strategy.base import Strategy
from archsearch.strategy.pareto import dominates, hypervolume
from archsearch.study.lock import LOCK_FILE, StudyLock, is_held
from archsearch.study.objectives import Constraint, Declaration
from archsearch.study.progress import Progress
from archsearch.study.safe_write import is_regular, write_atomically
from archsearch.study.screening import (
    META_KEY,
    Ranking,
    Screening,
    check_ranking,
    expand_aliases,
)
from archsearch.study.storage import SQLiteStorage, Storage, TrialRecord, dumps

DATABASE = "study.db"
BEST_WEIGHTS = "best_weights.pt"
#: the weights of a trial that may become the best, written before its result is committed
PENDING_WEIGHTS = "best_weights.pending.pt"
#: proposals in a row a study refuses by its constraints before it gives up on them
MAX_REJECTIONS = 1000


@dataclass(frozen=True)
class Budget:
    """Stop after ``evaluations`` finished trials and/or ``seconds`` of search time."""

    evaluations: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.evaluations is None and self.seconds is None:
            raise ArchsearchError("a budget needs a number of evaluations or seconds")
        if self.evaluations is not None and (
            isinstance(self.evaluations, bool) or not isinstance(self.evaluations, int)
        ):
            raise ArchsearchError(f"budget evaluations must be an integer: {self.evaluations!r}")
        if self.evaluations is not None and self.evaluations <= 0:
            raise ArchsearchError(f"budget must be > 0 evaluations, got {self.evaluations}")
        seconds = self.seconds
        if seconds is not None and not (
            isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0
        ):
            raise ArchsearchError(f"budget must be a finite number > 0 seconds, got {seconds!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations, "seconds": self.seconds}

    @classmethod
    def from_config(cls, section: Any) -> Budget | None:
        if section is None:
            return None
        if not isinstance(section, Mapping) or set(section) - {"evaluations", "seconds"}:
            raise ArchsearchError(f"a budget is {{'evaluations': N, 'seconds': S}}: {section!r}")
        return cls(section.get("evaluations"), section.get("seconds"))


def evaluation_seed(study_seed: int, number: int) -> int:
    """The training seed of trial ``number``: distinct per trial, fixed by the study seed."""
    return (study_seed * 1_000_003 + number) % (2**31 - 1)


def check_config(config: Any) -> None:
    """Refuse a configuration that strict JSON cannot store (NaN, infinities, objects)."""
    if not isinstance(config, Mapping):
        raise ArchsearchError(f"a study configuration is a mapping, got {type(config).__name__}")
    try:
        dumps(config)
    except (StudyError, TypeError) as exc:
        raise ArchsearchError(f"study configuration cannot be stored: {exc}") from None
    oneshot = config.get("oneshot")
    if oneshot is not None and not isinstance(oneshot, Mapping):
        raise ArchsearchError(f"a oneshot section is a mapping, got {oneshot!r:.60}")
    check_seed(config.get("seed", 0))


def check_meta(storage: Storage) -> None:
    """Refuse stored values besides the configuration that a crafted or damaged file got
    wrong, once when it is opened, rather than wherever a command reads them."""
    elapsed = storage.get_meta("elapsed", 0.0)
    if isinstance(elapsed, bool) or not isinstance(elapsed, int | float) or elapsed < 0:
        raise StudyError(f"the stored elapsed time {elapsed!r} is not a number of seconds")
    ranking = storage.get_meta(META_KEY)
    if ranking is not None:
        check_ranking(ranking)


class Study:
    """A search: space, strategy, evaluator, budget, declared objectives, and every trial."""

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        evaluator: Evaluator,
        *,
        budget: Budget | None = None,
        seed: int = 0,
        storage: Storage | None = None,
        directory: str | Path | None = None,
        config: Mapping[str, Any] | None = None,
        declaration: Declaration | None = None,
        lock: StudyLock | None = None,
        screening: Screening | None = None,
    ) -> None:
        evaluator.check_space(space)
        if screening is None and config is not None:
            screening = Screening.from_config(config.get("screen"))
        self.screening = screening
        self.declaration = declaration or Declaration.from_config(config or {}, evaluator)
        _check_objective_count(strategy, self.declaration)
        _check_value_names(evaluator, space, self.declaration)
        if strategy.uses_fidelity and not evaluator.supports_fidelity:
            warnings.warn(
                f"strategy {strategy.name!r} varies the fidelity, but evaluator "
                f"{evaluator.name!r} ignores it: a promotion re-evaluates an architecture for the "
                "same result, so each promotion spends a query on nothing new",
                stacklevel=2,
            )
        self.space = space
        self.strategy = strategy
        self.evaluator = evaluator
        if self.declaration.constraints:
            strategy.admissible = self._admissible
        self.budget = budget
        self.seed = seed
        self.directory = Path(directory) if directory is not None else None
        self.storage = storage if storage is not None else Storage()
        self._lock_handle = lock
        base = dict(config) if config is not None else self._describe()
        self.config = {**base, **self.declaration.to_config()}
        self._seq = 0
        self._n_finished = 0
        self._next_number = 0
        self._pending: list[TrialRecord] = []
        self._best: TrialRecord | None = None
        #: the Pareto front of the feasible completed trials, with their oriented points
        self._front: list[tuple[TrialRecord, tuple[float, ...]]] = []
        #: screened architectures still to evaluate (None: the ranking is not loaded yet)
        self._screen_queue: list[Architecture] | None = None
        self._admissible_memo: dict[Architecture, bool] = {}
        if isinstance(self.storage, SQLiteStorage):
            self.storage.adopt_v1_names(self.declaration.primary.name, self.declaration.reported)
        if self.storage.get_meta("config") is None:
            self.storage.set_meta("config", self.config)
            if _stored_code(self.config.get("space")) is not None:  # readable without it
                self.storage.set_meta(DECISIONS, decisions_to_meta(space))
            return
        check_meta(self.storage)
        if self.runner:
            self._replay()
        else:
            self._index()

    @property
    def runner(self) -> bool:
        """True when this process may write the study (it holds the lock, or has no file)."""
        return not isinstance(self.storage, SQLiteStorage) or self.storage.writable

    # ---------------------------------------------------------------- creation
    def _describe(self) -> dict[str, Any]:
        described = {
            "space": self.space.config(),
            "strategy": {"name": self.strategy.name, **self.strategy.options()},
            "evaluator": self.evaluator.config(),
            "seed": self.seed,
            "budget": self.budget.to_dict() if self.budget else None,
        }
        if self.screening is not None:
            described["screen"] = self.screening.to_config()
        return described

    @classmethod
    def from_config(cls, config: Mapping[str, Any], directory: str | Path | None = None) -> Study:
        """Build a study from a configuration of registered component names and options.

        With a ``directory``, the study lives in ``directory/study.db``: a new one is created,
        or the stored one is resumed when its configuration is the same. A directory that
        holds a different study is refused rather than overwritten, and so is one whose study
        another process is running. Everything is validated before anything is written.
        """
        config = expand_aliases(config)
        check_config(config)
        Budget.from_config(config.get("budget"))
        parts = _build(config)
        # the whole study in memory first: its declaration, screening and strategy are then
        # validated before a file is created (a refused configuration writes nothing)
        in_memory = cls._assemble(config, *parts, Storage(), None)
        if directory is None:
            return in_memory
        directory = check_output_dir(directory, "--out")
        path = directory / DATABASE
        foreign = directory.exists() and any(not _ours(p.name) for p in directory.iterdir())
        if path.exists():  # looked at after the listing, so a study linked in meanwhile is seen
            _check_same_study(path, config, parts, directory)
            return cls._open_runner(directory, config, parts)
        if foreign:
            raise StudyError(f"{directory} exists, is not empty and holds no study")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudyError(f"cannot create {directory}: {exc.strerror}") from None
        lock = StudyLock(directory)
        try:
            if path.exists():  # another process made it between our check and our lock
                lock.close()
                _check_same_study(path, config, parts, directory)
                return cls._open_runner(directory, config, parts)
            storage = SQLiteStorage.create(path)
            return cls._assemble(config, *parts, storage, directory, lock)
        except BaseException:
            lock.close()
            if path.exists() and not SQLiteStorage(path).get_meta("config"):
                path.unlink()  # created here and left without a study: not a study at all
            raise

    @classmethod
    def _open_runner(cls, directory: Path, config: Mapping[str, Any], parts: tuple) -> Study:
        lock = StudyLock(directory)
        try:  # the state is loaded under the lock, so no other runner can change it after
            storage = SQLiteStorage(directory / DATABASE, writable=True)
            stored = storage.get_meta("config")
            if stored is None:
                storage.close()
                raise StudyError(f"{directory / DATABASE} holds no study configuration")
            study = cls._assemble(config if config else stored, *parts, storage, directory, lock)
        except BaseException:
            lock.close()
            raise
        study._repair_weights()
        return study

    @classmethod
    def _assemble(cls, config, space, strategy, evaluator, storage, directory, lock=None) -> Study:
        return cls(
            space, strategy, evaluator, budget=Budget.from_config(config.get("budget")),
            seed=int(config.get("seed", 0)), storage=storage, directory=directory,
            config=config, lock=lock,
        )  # fmt: skip

    @classmethod
    def load(cls, directory: str | Path, *, run: bool = False, build: bool = False) -> Study:
        """Reopen the study stored in ``directory``.

        By default it is opened to *read* (show, report, rules): nothing is written, not even
        the lock file, the strategy is not replayed, and no code the file names is imported:
        a space made by a user's factory is read from its stored decisions. ``build=True``
        (export) needs the real space, so it imports such a factory, announced on stderr,
        when it is importable from the user's own environment (:func:`check_importable`).
        ``run=True`` (resume) builds too, then takes the lock, loads the state under it and
        replays the strategy, ready to :meth:`optimize`.
        """
        directory = Path(directory)
        storage, config = open_stored(directory)
        try:
            check_config(config)  # a crafted file may hold any JSON: a mapping first
            config = expand_aliases(config)
            check_config(config)
            parts = _build(config, _stored_space(config, storage, directory, run or build))
        except ArchsearchError:
            storage.close()
            raise
        study = cls._assemble(config, *parts, storage, directory)
        if run:
            study._become_runner()
        return study

    def _become_runner(self) -> None:
        """Take the lock, then reload the stored state under it and replay the strategy.

        Loading before the lock would let a second ``resume`` of a running study start from
        stale state and re-run (and overwrite) what the first one finished meanwhile.
        """
        lock = StudyLock(self.directory)
        try:
            storage = SQLiteStorage(self.directory / DATABASE, writable=True)
        except BaseException:
            lock.close()
            raise
        self.storage.close()
        self.storage, self._lock_handle = storage, lock
        check_meta(storage)  # the file may have changed since it was read
        storage.adopt_v1_names(self.declaration.primary.name, self.declaration.reported)
        self._best = None
        self._replay()
        self._repair_weights()

    def _index(self) -> None:
        """Counters and the best trial from the stored trials, without the strategy."""
        trials = self.storage.trials()
        self._front = []
        for trial in trials:
            self._update_best(trial)
            self._update_front(trial)
        self._n_finished = sum(t.status in ("complete", "failed") for t in trials)
        self._next_number = max((t.number for t in trials), default=-1) + 1
        seqs = [t.asked_seq for t in trials] + [t.told_seq for t in trials if t.told_seq]
        self._seq = max(seqs, default=-1) + 1
        self._pending = [t for t in trials if t.status == "running"]

    def _replay(self) -> None:
        """Bring the strategy to its stored state by replaying asks and tells in order."""
        trials = self.storage.trials()
        events = [(t.asked_seq, 0, t) for t in trials]
        events += [(t.told_seq, 1, t) for t in trials if t.told_seq is not None]
        diverged = 0
        for _, kind, trial in sorted(events, key=lambda e: (e[0], e[1])):
            arch = self.space.from_json(trial.arch_json)
            if kind == 0 and trial.origin != "strategy":
                # chosen by the screening or given to the study (evaluate_given), never asked
                self.strategy.hold(arch)
            elif kind == 0:
                proposed, _ = self.strategy.propose()
                diverged += proposed != arch
            else:
                self._tell(arch, trial)
        self._index()
        if diverged:
            warnings.warn(
                f"{diverged} replayed proposals differ from the stored ones (the strategy or its"
                " options changed); the stored results were told all the same",
                stacklevel=3,
            )

    def _tell(self, arch: Architecture, trial: TrialRecord) -> None:
        vector = self.declaration.vector(trial.values) if trial.status == "complete" else None
        feasible = bool(trial.feasible) if trial.feasible is not None else True
        self.strategy.tell(arch, vector, feasible=feasible, fidelity=trial.fidelity)

    # ---------------------------------------------------------------- running
    @property
    def trials(self) -> list[TrialRecord]:
        return self.storage.trials()

    @property
    def n_finished(self) -> int:
        return self._n_finished

    @property
    def elapsed(self) -> float:
        """Seconds spent searching, summed over every run of this study."""
        return float(self.storage.get_meta("elapsed", 0.0))

    def exhausted(self, budget: Budget | None = None) -> bool:
        budget = budget or self.budget
        if budget is None:
            raise ArchsearchError("no budget given")
        if budget.evaluations is not None and self.n_finished >= budget.evaluations:
            return True
        return budget.seconds is not None and self.elapsed >= budget.seconds

    def optimize(
        self,
        n_evaluations: int | None = None,
        seconds: float | None = None,
        *,
        progress: bool | str = False,
        callbacks: list[Callable[[Study, TrialRecord], None]] | None = None,
        execution: Execution | None = None,
        backend: Backend | None = None,
    ) -> TrialRecord | None:
        """Run until the budget is spent; returns the best trial.

        ``execution`` (:class:`archsearch.parallel.Execution`) evaluates several trials at
        once on worker processes or Ray, with retries and a trial timeout; the default
        evaluates one at a time in this process. ``backend`` gives a started backend
        instead (a :class:`~archsearch.parallel.simulated.SimulatedBackend`, say).

        ``progress``: ``True`` shows a bar on a terminal and log lines elsewhere, ``"bar"``
        or ``"log"`` force one (:mod:`archsearch.study.progress`), ``False`` shows nothing.

        ``n_evaluations``/``seconds`` override the stored budget; both count the whole study
        (trials of earlier runs included), so calling this again after a kill finishes it.
        The elapsed time counts all wall time of the run, commits included, and the
        evaluator is told the seconds left so that training stops at an epoch boundary.
        """
        if not self.runner:
            self._become_runner()
        budget = self.budget
        if n_evaluations is not None or seconds is not None:
            budget = Budget(n_evaluations, seconds)
        bar = Progress(self, budget, progress) if progress else None
        lock = self._lock_handle or self._take_lock()
        base, started = self.elapsed, time.perf_counter()
        try:
            if not self.exhausted(budget) and self._screen_queue is None:
                self._screen()  # its cost counts in the elapsed time, as the search's does
                self.storage.set_meta("elapsed", base + time.perf_counter() - started)

            def finished(trial: TrialRecord) -> None:
                self.storage.set_meta("elapsed", base + time.perf_counter() - started)
                for callback in callbacks or []:
                    callback(self, trial)
                if bar is not None:
                    bar.update()

            def seconds_left() -> float | None:
                spent = base + time.perf_counter() - started
                return None if budget.seconds is None else max(budget.seconds - spent, 0.0)

            execution = execution or Execution()
            if backend is None and execution.in_process:
                while not self.exhausted(budget):
                    finished(self._step(seconds_left()))
            else:
                from archsearch.study.scheduler import Scheduler

                Scheduler(self, execution, backend).run(budget, seconds_left, finished)
        finally:
            if bar is not None:
                bar.close()
            if lock is not self._lock_handle and lock is not None:
                lock.close()
        return self.best

    def evaluate_given(self, arch: Architecture, *, origin: str) -> TrialRecord:
        """Evaluate ``arch``, which the strategy did not propose, as the study's next trial.

        A one-shot method derives its own architecture (``origin="oneshot"``): it is stored,
        counted against the budget and told to the strategy like any trial, so that show,
        export and resume treat it alike; a replay tells it but asks the strategy nothing
        for it, since the strategy never proposed it.
        """
        if origin == "strategy":
            raise ArchsearchError("a given architecture needs an origin other than 'strategy'")
        if not self.runner:
            self._become_runner()
        base, started = self.elapsed, time.perf_counter()
        trial = self._step(given=(arch, origin))
        self.storage.set_meta("elapsed", base + time.perf_counter() - started)
        return trial

    def _take_lock(self) -> StudyLock | None:
        return None if self.directory is None else StudyLock(self.directory)

    def _screen(self) -> None:
        """Load the stored ranking, or rank now and store it; queue what is left of its top."""
        self._screen_queue = []
        if self.screening is None:
            return
        stored = self.storage.get_meta(META_KEY)
        if stored is not None:
            ranking = Ranking.from_meta(stored, self.space)
        else:
            ranking = self.screening.rank(self.space, self.seed)
            self.storage.set_meta(META_KEY, ranking.to_meta(self.space))
        done = {t.arch for t in self.storage.trials()}
        self._screen_queue = [a for a in ranking.top if self.space.to_string(a) not in done]

    def _step(
        self, time_limit: float | None = None, given: tuple[Architecture, str] | None = None
    ) -> TrialRecord:
        started = self._start_trial(given)
        if isinstance(started, TrialRecord):  # a given architecture the constraints refused
            return started
        trial, arch = started
        result, error = self._evaluate(arch, trial, time_limit)
        return self._finish_trial(trial, arch, result, error)

    def _start_trial(
        self, given: tuple[Architecture, str] | None = None
    ) -> tuple[TrialRecord, Architecture] | TrialRecord:
        """The next trial to evaluate, stored as running: an interrupted one first (one more
        attempt), else the next candidate the constraints admit, the refused ones recorded
        on the way. A ``given`` architecture the constraints refuse is returned as its
        record, to evaluate nothing."""
        if self._screen_queue is None:
            self._screen()
        if self._pending and given is None:  # a killed runner left it running: evaluate again
            trial = self._pending.pop(0)
            trial = self.storage.update_trial(trial.number, attempts=trial.attempts + 1)
            return trial, self.space.from_json(trial.arch_json)
        for _ in range(MAX_REJECTIONS):
            arch, fidelity, origin = self._next_candidate(given)
            broken = self._broken_before_evaluation(arch)
            if not broken:
                break
            record = self._record_rejection(arch, fidelity, origin, broken)
            if given is not None:
                return record
        else:
            raise ArchsearchError(
                f"{MAX_REJECTIONS} proposals in a row break the constraints "
                f"({', '.join(map(str, self.declaration.constraints))}) and none was "
                "evaluated: the constraints may admit no architecture of the space"
            )
        trial = self._new_trial(arch, fidelity, origin, status="running")
        self.storage.add_trial(trial)
        return trial, arch

    def _finish_trial(
        self,
        trial: TrialRecord,
        arch: Architecture,
        result: EvalResult | None,
        error: str | None,
    ) -> TrialRecord:
        """Commit an evaluation's outcome, tell the strategy, keep the best and the front."""
        fields = self._outcome(result, error)
        new_best = self._would_be_best(fields)
        model = None if result is None else result.model
        if new_best and model is not None:
            self._save_weights(model, trial.number, PENDING_WEIGHTS)
        finished = self.storage.finish_trial(
            trial.number, told_seq=self._next_seq(), finished=time.time(), **fields
        )
        self._n_finished += 1
        self._tell(arch, finished)
        if self._update_best(finished) and model is not None:
            self._promote_pending()
        if self._update_front(finished) and len(self.declaration.objectives) > 1:
            self.storage.set_meta("pareto", [t.number for t in self.pareto_front()])
        return finished

    def _next_candidate(
        self, given: tuple[Architecture, str] | None
    ) -> tuple[Architecture, float | None, str]:
        """The next architecture to consider: given, from the screening, or proposed."""
        if given is not None:
            return given[0], None, given[1]
        if self._screen_queue:
            arch = self._screen_queue.pop(0)
            self.strategy.hold(arch)  # never proposed again; pending while it is evaluated
            return arch, None, "screen"
        arch, fidelity = self.strategy.propose()
        return arch, fidelity, "strategy"

    def _new_trial(
        self, arch: Architecture, fidelity: float | None, origin: str, **fields: Any
    ) -> TrialRecord:
        number = self._next_number
        self._next_number += 1
        return TrialRecord(
            number=number,
            arch=self.space.to_string(arch),
            arch_json=self.space.to_json(arch),
            seed=evaluation_seed(self.seed, number),
            asked_seq=self._next_seq(),
            started=time.time(),
            fidelity=fidelity,
            origin=origin,
            **fields,
        )

    def _admissible(self, arch: Architecture) -> bool:
        """The strategy's filter (``Strategy.admissible``): False for an architecture whose
        values known before evaluation break a hard constraint. Memoised, because a
        model-based strategy asks it of every candidate of every pool, and cheap values may
        mean building a network."""
        known = self._admissible_memo.get(arch)
        if known is None:
            known = self._admissible_memo[arch] = not self._broken_before_evaluation(arch)
        return known

    def _broken_before_evaluation(self, arch: Architecture) -> dict[str, float]:
        """The values, known without evaluating, by which ``arch`` breaks a hard constraint
        (empty when none does, or when the evaluator knows none of them beforehand)."""
        constraints = self.declaration.constraints
        if not constraints:
            return {}
        known = self.evaluator.cheap_values(arch, self.space)
        if not any(c.name in known and not c.holds(known[c.name]) for c in constraints):
            return {}
        return dict(known)

    def _record_rejection(
        self, arch: Architecture, fidelity: float | None, origin: str, known: dict[str, float]
    ) -> TrialRecord:
        """Store and tell an architecture refused before evaluation: status ``infeasible``,
        the values that broke the constraints, no evaluation spent (it is not counted)."""
        trial = self._new_trial(
            arch, fidelity, origin, status="infeasible", values=known, feasible=False
        )
        trial = replace(trial, told_seq=self._next_seq(), finished=trial.started)
        self.storage.add_trial(trial)
        self._tell(arch, trial)
        return trial

    def _outcome(self, result: EvalResult | None, error: str | None) -> dict[str, Any]:
        """The stored fields of a finished evaluation: status, values, feasibility, error."""
        values = {} if result is None else dict(result.values)
        declared = self.declaration
        fields = {"values": values, "objective": None, "feasible": None, "error": error}
        fields["reported"] = _finite_or_none(values.get(declared.reported))
        if error is not None:
            return {**fields, "status": "failed"}
        if result.diverged:
            return {**fields, "status": "failed", "error": "non-finite loss: training diverged"}
        missing = [name for name in declared.value_names if name not in values]
        if missing:
            raise ArchsearchError(
                f"evaluator {self.evaluator.name!r} reports no value {missing[0]!r}; "
                f"it reports: {', '.join(sorted(values)) or 'nothing'}"
            )
        if declared.vector(values) is None:
            bad = next(
                (o.name for o in declared.objectives if not _finite(values[o.name])),
                "a soft constraint (it must be a finite number > 0)",
            )
            return {**fields, "status": "failed", "error": f"non-finite value of {bad}"}
        return {
            **fields,
            "status": "complete",
            "objective": declared.score(values),
            "feasible": declared.feasible(values),
        }

    def _evaluate(
        self, arch: Architecture, trial: TrialRecord, time_limit: float | None = None
    ) -> tuple[EvalResult | None, str | None]:
        return evaluate(
            self.evaluator, self.space, arch, seed=trial.seed, fidelity=trial.fidelity,
            time_limit=time_limit,
        )  # fmt: skip

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq - 1

    def _would_be_best(self, fields: Mapping[str, Any]) -> bool:
        if fields["status"] != "complete" or not fields["feasible"]:
            return False
        best = self._best
        return best is None or self.declaration.primary.better(fields["objective"], best.objective)

    def _update_front(self, trial: TrialRecord) -> bool:
        """Keep the Pareto front of the feasible completed trials; True when it changed.

        A new point leaves the front as it is when a member dominates it (or equals it:
        the earliest trial stays), else it joins and evicts the members it dominates."""
        if trial.status != "complete" or trial.feasible is False:
            return False
        (point,) = self.declaration.points([trial.values])
        if point is None:
            return False
        kept = []
        for member, other in self._front:
            if other == point or dominates(other, point):
                return False
            if not dominates(point, other):
                kept.append((member, other))
        self._front = [*kept, (trial, point)]
        return True

    def _update_best(self, trial: TrialRecord) -> bool:
        fields = {"status": trial.status, "feasible": trial.feasible, "objective": trial.objective}
        if self._would_be_best(fields):
            self._best = trial
            return True
        return False

    # ---------------------------------------------------------------- weights
    def _save_weights(self, model: Any, number: int, name: str) -> None:
        """Write ``{trial, arch, state_dict}`` atomically: a temporary file, then a rename."""
        if self.directory is None:
            return
        import torch

        stored = {"trial": number, "arch": self.storage.trial(number).arch,
                  "state_dict": model.state_dict()}  # fmt: skip
        write_atomically(self.directory / name, lambda handle: torch.save(stored, handle))

    def _promote_pending(self) -> None:
        """The best trial's result is committed: its pending weights become the best ones."""
        if self.directory is not None and is_regular(self.directory / PENDING_WEIGHTS):
            os.replace(self.directory / PENDING_WEIGHTS, self.directory / BEST_WEIGHTS)

    def _repair_weights(self) -> None:
        """After an interruption, make ``best_weights.pt`` hold the best trial's weights.

        The weights of a possible new best are written before its result is committed and
        renamed after, so a kill -9 in between leaves them pending: they are promoted when
        the trial did become the best, dropped otherwise. If the best trial's weights are
        missing (a study written by the first release, killed between its commit and its
        save), the trial is retrained from its stored seed, which gives the same network.
        """
        if self.directory is None or self.best is None:
            return
        pending, final = self.directory / PENDING_WEIGHTS, self.directory / BEST_WEIGHTS
        if pending.is_symlink():  # planted: never read or renamed into place
            pending.unlink()
        elif pending.exists():
            if _stored_trial(pending) == self.best.number:
                os.replace(pending, final)
            else:
                pending.unlink()
        if not getattr(self.evaluator, "keeps_model", False) or _stored_trial(final) == (
            self.best.number
        ):
            return
        best = self.best
        print(
            f"archsearch: the weights of the best trial {best.number} were not saved (the study "
            "was interrupted); retraining it from its stored seed",
            file=sys.stderr,
        )
        arch = self.space.from_json(best.arch_json)
        result, error = self._evaluate(arch, best)
        if result is not None and result.model is not None:
            self._save_weights(result.model, best.number, BEST_WEIGHTS)

    # ---------------------------------------------------------------- results
    @property
    def best(self) -> TrialRecord | None:
        """The feasible completed trial with the best primary objective (earliest on ties)."""
        return self._best

    def best_arch(self) -> Architecture | None:
        return None if self._best is None else self.space.from_json(self._best.arch_json)

    def pareto_front(self) -> list[TrialRecord]:
        """The feasible completed trials no other one dominates on the declared objectives
        (raw values, not a soft reward), best primary objective first; one trial per point.
        With one objective it is the best trial alone."""
        primary = self.declaration.primary
        members = [trial for trial, _ in self._front]
        return sorted(members, key=lambda t: (-primary.oriented(t.values[primary.name]), t.number))

    def hypervolume(self) -> tuple[float, dict[str, float]] | None:
        """The hypervolume of the front, in the objectives' own units, and the reference
        point it is measured from: the worst value of each objective over the feasible
        completed trials, moved a tenth of the objective's range further out so that the
        front's extreme members count too (None before two feasible points exist)."""
        points = self.declaration.points(
            [t.values for t in self.storage.trials() if t.status == "complete" and t.feasible]
        )
        points = np.array([p for p in points if p is not None])
        if len(points) < 2:
            return None
        worst, best = points.min(axis=0), points.max(axis=0)
        nadir = worst - 0.1 * (best - worst)
        volume = hypervolume(np.array([p for _, p in self._front]), nadir)
        names = [o.name for o in self.declaration.objectives]
        reference = {
            name: o.oriented(float(v))
            for name, o, v in zip(names, self.declaration.objectives, nadir, strict=True)
        }
        return volume, reference

    def pick(self, conditions: Sequence[Constraint]) -> TrialRecord:
        """The trial with the best primary objective among those meeting every condition,
        taken from the Pareto front (from every feasible completed trial when the study has
        one objective, whose front is its best trial alone)."""
        if len(self.declaration.objectives) > 1:
            pool = self.pareto_front()
        else:
            pool = [t for t in self.storage.trials() if t.status == "complete" and t.feasible]
        chosen = [t for t in pool if all(c.holds(t.values.get(c.name)) for c in conditions)]
        if not chosen:
            described = " and ".join(map(str, conditions))
            raise StudyError(
                f"no {'front member' if len(self.declaration.objectives) > 1 else 'trial'} of "
                f"the study meets {described} ({len(pool)} considered)"
            )
        primary = self.declaration.primary
        return max(chosen, key=lambda t: (primary.oriented(t.objective), -t.number))

    def trajectory(self) -> list[dict[str, Any]]:
        """Best-so-far primary objective and its reported figure after each finished trial."""
        rows, best = [], None
        primary = self.declaration.primary
        finished = sorted(
            (t for t in self.storage.trials() if t.status in ("complete", "failed")),
            key=lambda t: t.told_seq,
        )
        for i, t in enumerate(finished, start=1):
            good = t.status == "complete" and t.feasible is not False
            if good and (best is None or primary.better(t.objective, best.objective)):
                best = t
            rows.append({
                "evaluations": i,
                "trial": t.number,
                "objective": t.objective,
                "best_objective": None if best is None else best.objective,
                "best_reported": None if best is None else best.reported,
            })  # fmt: skip
        return rows

    def trial_rows(self) -> list[dict[str, Any]]:
        """Every trial as ``show --trials`` prints it, the running ones included (a reader
        sees the last committed state while the study runs)."""
        return [
            {
                "number": t.number,
                "arch": t.arch,
                "status": t.status,
                "values": t.values,
                "attempts": t.attempts,
                "origin": t.origin,
                "started": t.started,
                "finished": t.finished,
                "error": t.error,
            }
            for t in self.storage.trials()
        ]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the study and its result."""
        best = self.best
        trials = self.storage.trials()
        declared = self.declaration
        return {
            "config": self.config,
            "n_evaluations": self.n_finished,
            "n_failed": sum(t.status == "failed" for t in trials),
            "n_infeasible": sum(t.feasible is False for t in trials),
            "n_rejected": sum(t.status == "infeasible" for t in trials),
            "elapsed_seconds": round(self.elapsed, 3),
            "objective": declared.primary.name,
            "objectives": [o.to_dict() for o in declared.objectives],
            "constraints": [c.to_dict() for c in declared.constraints],
            "reported": declared.reported,
            "screen": self._screen_summary(trials),
            **self._running_summary(trials),
            "best": None if best is None else {
                "trial": best.number,
                "arch": best.arch,
                "objective": best.objective,
                "reported": best.reported,
                "values": best.values,
                "origin": best.origin,
            },
            **self._front_summary(),
        }  # fmt: skip

    def _front_summary(self) -> dict[str, Any]:
        """``pareto`` and ``hypervolume`` of a study with several objectives (else nothing)."""
        declared = self.declaration
        if len(declared.objectives) < 2:
            return {}
        names = [*declared.value_names, *([declared.reported] if declared.reported else [])]
        pareto = [
            {
                "trial": t.number,
                "arch": t.arch,
                "values": {name: t.values.get(name) for name in dict.fromkeys(names)},
            }
            for t in self.pareto_front()
        ]
        measured = self.hypervolume()
        volume = None if measured is None else {"value": measured[0], "reference": measured[1]}
        return {"pareto": pareto, "hypervolume": volume}

    def _running_summary(self, trials: list[TrialRecord]) -> dict[str, Any]:
        """The trials being evaluated, and whether a runner still holds the study (else they
        were interrupted, and a resume evaluates them again); nothing when none is running.
        So that ``show`` of a study whose first trial is still training says so."""
        running = [t for t in trials if t.status == "running"]
        if not running:
            return {}
        active = self.directory is not None and is_held(self.directory)
        return {
            "running": [{"trial": t.number, "arch": t.arch, "started": t.started} for t in running],
            "runner_active": active,
        }

    def _screen_summary(self, trials: list[TrialRecord]) -> dict[str, Any] | None:
        """What the screening ranked and evaluated, and its seconds (None: no screening)."""
        if self.screening is None:
            return None
        stored = self.storage.get_meta(META_KEY)
        section = self.screening.to_config()
        return {
            **section,
            "ranked": None if stored is None else len(stored["archs"]),
            "top_k": section.get("top_k", 1) if stored is None else stored["top_k"],
            "evaluated": sum(t.origin == "screen" for t in trials),
            "seconds": None if stored is None else round(float(stored["seconds"]), 3),
        }

    def close(self) -> None:
        self.storage.close()
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None


def open_stored(directory: Path) -> tuple[SQLiteStorage, Any]:
    """The study file in ``directory`` opened read-only, and its stored configuration (as
    stored: nothing is built from it)."""
    path = directory / DATABASE
    if not path.is_file():
        raise StudyError(f"no study in {directory} (expected {path})")
    storage = SQLiteStorage(path)
    config = storage.get_meta("config")
    if config is None:
        storage.close()
        raise StudyError(f"{path} holds no study configuration")
    return storage, config


def _build(
    config: Mapping[str, Any], space: SearchSpace | None = None
) -> tuple[SearchSpace, Strategy, Evaluator]:
    from archsearch.components import build_components

    parts = build_components(config, space)
    screening = Screening.from_config(config.get("screen"))
    if screening is not None:
        screening.check(parts[0])
    return parts


def _stored_code(section: Any) -> str | None:
    """The user code that building the space ``section`` names would import (None: none).
    The space's class comes from archsearch's own registry, which imports nothing else."""
    from archsearch.space.registry import SPACES

    if not isinstance(section, Mapping) or not isinstance(section.get("name"), str):
        return None  # building refuses it
    if section["name"] not in SPACES:
        return None
    return SPACES.get(section["name"]).stored_code(section)


def _stored_space(
    config: Mapping[str, Any], storage: Storage, directory: Path, build: bool
) -> SearchSpace | None:
    """The space of a stored study when it must not be built from its configuration as is:
    read from its stored decisions when only read; None (build it) otherwise, after checking
    that the user code it names is importable here and saying that it is imported."""
    code = _stored_code(config.get("space"))
    if code is None:
        return None
    if build:
        check_importable(code, directory)
        print(f"archsearch: importing the space factory {code} named by the study", file=sys.stderr)
        return None
    stored = storage.get_meta(DECISIONS)
    if stored is not None:
        decisions = decisions_from_meta(stored)
    else:  # a study stored before its decisions were
        decisions = decisions_from_trials(t.arch_json for t in storage.trials())
    return StoredSpace(config["space"]["name"], decisions)


def _check_objective_count(strategy: Strategy, declaration: Declaration) -> None:
    wanted = len(declaration.objectives)
    limit = strategy.max_objectives
    if limit is not None and wanted > limit:
        from archsearch.strategy.base import STRATEGIES

        multi = [
            name
            for name in STRATEGIES.names()
            if (m := STRATEGIES.get(name).max_objectives) is None or m >= wanted
        ]
        raise ArchsearchError(
            f"strategy {strategy.name!r} optimises one objective, the study declares {wanted} "
            f"({', '.join(o.name for o in declaration.objectives)}); multi-objective strategies: "
            f"{', '.join(multi) or 'none'}"
        )


def _ours(name: str) -> bool:
    """A file a runner puts in a study directory before its study exists: the lock, the
    temporary file the database is written to before it is linked into place with SQLite's
    journal beside it (``.study.db.PID.tmp-journal``), and the writability probe of
    :func:`archsearch.checks.check_output_dir`."""
    return name == LOCK_FILE or name.startswith((PROBE_PREFIX, f".{DATABASE}."))


def _check_value_names(evaluator: Evaluator, space: SearchSpace, declared: Declaration) -> None:
    """Refuse declared names the evaluator is known not to report (before any evaluation)."""
    known = evaluator.value_names(space)
    if known is None:
        return
    needed = [o.name for o in declared.objectives] + [c.name for c in declared.constraints]
    missing = [name for name in needed if name not in known]
    if missing:
        raise ArchsearchError(
            f"evaluator {evaluator.name!r} reports no value {missing[0]!r}; "
            f"it reports: {', '.join(sorted(known))}"
        )


def _check_same_study(path: Path, config: Mapping[str, Any], parts: tuple, directory: Path) -> None:
    """Refuse, reading only, a directory that holds a study of another configuration."""
    stored = SQLiteStorage(path)
    try:
        found = stored.get_meta("config")
    finally:
        stored.close()
    if found is None:
        return  # being created right now by another process: its lock decides
    with contextlib.suppress(ArchsearchError):  # a configuration stored with an alias
        found = expand_aliases(found)
    evaluator = parts[2]
    mine = {**config, **Declaration.from_config(config, evaluator).to_config()}
    try:
        theirs = {**found, **Declaration.from_config(found, evaluator).to_config()}
    except ArchsearchError:
        theirs = found
    if _normalise(mine) != _normalise(theirs):
        raise StudyError(
            f"{directory} holds a different study ({_summary(found)}); "
            f"use 'archsearch resume {directory}' or another --out directory"
        )


def _stored_trial(path: Path) -> int | None:
    """The trial number a weights file names, or None when it is missing, a link (not the
    study's own) or unreadable."""
    if not is_regular(path):
        return None
    from archsearch.runtime import load_checkpoint

    try:
        return int(load_checkpoint(path, "weights")["trial"])
    except (ArchsearchError, TypeError, KeyError, ValueError):  # damaged: as good as none
        return None


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def _finite_or_none(value: Any) -> float | None:
    return float(value) if _finite(value) else None


def _normalise(config: Mapping[str, Any]) -> Any:
    import json

    return json.loads(json.dumps(config, sort_keys=True))


def _summary(config: Mapping[str, Any]) -> str:
    parts = [
        f"{k} {config[k].get('name')}"
        for k in ("space", "strategy", "evaluator")
        if isinstance(config.get(k), Mapping)
    ]
    return ", ".join(parts) + f", seed {config.get('seed')}"
