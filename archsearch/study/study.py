"""The study: runs a strategy with an evaluator under a budget and records every trial.

Each finished evaluation is committed to storage before the next proposal, so a study
killed at any point (kill -9 during an evaluation included) loses only the evaluation in
flight. :meth:`Study.load` rebuilds the components from the stored configuration and
replays the stored asks and tells through the strategy (see the strategy contract), after
which the search continues exactly where it stopped.
"""

from __future__ import annotations

import math
import os
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError, StudyError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import Strategy
from archsearch.study.storage import MemoryStorage, SQLiteStorage, TrialRecord

DATABASE = "study.db"
BEST_WEIGHTS = "best_weights.pt"


@dataclass(frozen=True)
class Budget:
    """Stop after ``evaluations`` finished trials and/or ``seconds`` of search time."""

    evaluations: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.evaluations is None and self.seconds is None:
            raise ArchsearchError("a budget needs a number of evaluations or seconds")
        if self.evaluations is not None and self.evaluations <= 0:
            raise ArchsearchError(f"budget must be > 0 evaluations, got {self.evaluations}")
        if self.seconds is not None and not self.seconds > 0:
            raise ArchsearchError(f"budget must be > 0 seconds, got {self.seconds}")

    def to_dict(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations, "seconds": self.seconds}


def evaluation_seed(study_seed: int, number: int) -> int:
    """The training seed of trial ``number``: distinct per trial, fixed by the study seed."""
    return (study_seed * 1_000_003 + number) % (2**31 - 1)


class Study:
    """A search: space, strategy, evaluator, budget and the record of every trial."""

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        evaluator: Evaluator,
        *,
        budget: Budget | None = None,
        seed: int = 0,
        storage: MemoryStorage | None = None,
        directory: str | Path | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        evaluator.check_space(space)
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
        self.budget = budget
        self.seed = seed
        self.directory = Path(directory) if directory is not None else None
        self.storage = storage if storage is not None else MemoryStorage()
        self.config = dict(config) if config is not None else self._describe()
        self._seq = 0
        self._pending: list[TrialRecord] = []
        self._best: TrialRecord | None = None
        if self.storage.get_meta("config") is None:
            self.storage.set_meta("config", self.config)
        else:
            self._replay()

    # ---------------------------------------------------------------- creation
    def _describe(self) -> dict[str, Any]:
        return {
            "space": self.space.config(),
            "strategy": {"name": self.strategy.name, **self.strategy.options()},
            "evaluator": self.evaluator.config(),
            "seed": self.seed,
            "budget": self.budget.to_dict() if self.budget else None,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], directory: str | Path | None = None) -> Study:
        """Build a study from a configuration of registered component names and options.

        With a ``directory``, the study lives in ``directory/study.db``: a new one is created,
        or the stored one is resumed when its configuration is the same. A directory that
        holds a different study is refused rather than overwritten.
        """
        from archsearch.components import build_components

        storage: MemoryStorage
        if directory is None:
            storage = MemoryStorage()
        else:
            directory = Path(directory)
            path = directory / DATABASE
            if path.exists():
                stored = SQLiteStorage(path)
                found = stored.get_meta("config")
                if found is not None and _normalise(found) != _normalise(config):
                    stored.close()
                    raise StudyError(
                        f"{directory} holds a different study ({_summary(found)}); "
                        f"use 'archsearch resume {directory}' or another --out directory"
                    )
                storage = stored
            else:
                if directory.exists() and any(directory.iterdir()):
                    raise StudyError(f"{directory} exists, is not empty and holds no study")
                space, strategy, evaluator = build_components(config)  # validate before writing
                directory.mkdir(parents=True, exist_ok=True)
                storage = SQLiteStorage(path)
                return cls._assemble(config, space, strategy, evaluator, storage, directory)
        space, strategy, evaluator = build_components(config)
        return cls._assemble(config, space, strategy, evaluator, storage, directory)

    @classmethod
    def _assemble(cls, config, space, strategy, evaluator, storage, directory) -> Study:
        budget = Budget(**config["budget"]) if config.get("budget") else None
        return cls(
            space, strategy, evaluator, budget=budget, seed=int(config.get("seed", 0)),
            storage=storage, directory=directory, config=config,
        )  # fmt: skip

    @classmethod
    def load(cls, directory: str | Path) -> Study:
        """Reopen the study stored in ``directory`` to inspect or resume it."""
        path = Path(directory) / DATABASE
        if not path.is_file():
            raise StudyError(f"no study in {directory} (expected {path})")
        storage = SQLiteStorage(path)
        config = storage.get_meta("config")
        if config is None:
            raise StudyError(f"{path} holds no study configuration")
        from archsearch.components import build_components

        space, strategy, evaluator = build_components(config)
        return cls._assemble(config, space, strategy, evaluator, storage, directory)

    def _replay(self) -> None:
        """Bring the strategy to its stored state by replaying asks and tells in order."""
        trials = self.storage.trials()
        events = [(t.asked_seq, 0, t) for t in trials]
        events += [(t.told_seq, 1, t) for t in trials if t.told_seq is not None]
        diverged = 0
        for seq, kind, trial in sorted(events, key=lambda e: (e[0], e[1])):
            arch = self.space.from_json(trial.arch_json)
            if kind == 0:
                proposed, _ = self.strategy.propose()
                diverged += proposed != arch
            else:
                objective = trial.objective if trial.status == "complete" else None
                self.strategy.tell(arch, objective, fidelity=trial.fidelity)
                self._update_best(trial)
            self._seq = max(self._seq, seq + 1)
        if diverged:
            warnings.warn(
                f"{diverged} replayed proposals differ from the stored ones (the strategy or its"
                " options changed); the stored results were told all the same",
                stacklevel=3,
            )
        self._pending = [t for t in trials if t.status == "running"]

    # ---------------------------------------------------------------- running
    @property
    def trials(self) -> list[TrialRecord]:
        return self.storage.trials()

    @property
    def n_finished(self) -> int:
        return sum(t.status != "running" for t in self.storage.trials())

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
        progress: bool = False,
        callbacks: list[Callable[[Study, TrialRecord], None]] | None = None,
    ) -> TrialRecord | None:
        """Run until the budget is spent; returns the best trial.

        ``n_evaluations``/``seconds`` override the stored budget; both count the whole study
        (trials of earlier runs included), so calling this again after a kill finishes it.
        """
        budget = self.budget
        if n_evaluations is not None or seconds is not None:
            budget = Budget(n_evaluations, seconds)
        bar = self._progress_bar(budget) if progress else None
        lock = self._lock()
        try:
            while not self.exhausted(budget):
                started = time.perf_counter()
                trial = self._step()
                elapsed = self.elapsed + time.perf_counter() - started
                self.storage.set_meta("elapsed", elapsed)
                for callback in callbacks or []:
                    callback(self, trial)
                if bar is not None:
                    self._advance(bar, budget)
        finally:
            if bar is not None:
                bar.close()
            if lock is not None:
                lock.close()  # closing the file releases the lock
        return self.best

    def _lock(self):
        """Hold ``study.lock`` while running, so a second process cannot write the study."""
        if self.directory is None:
            return None
        import fcntl

        handle = open(self.directory / "study.lock", "w")  # noqa: SIM115 (held while running)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StudyError(
                f"the study in {self.directory} is being run by another process"
            ) from None
        return handle

    def _step(self) -> TrialRecord:
        if self._pending:
            trial = self._pending.pop(0)
            arch = self.space.from_json(trial.arch_json)
        else:
            arch, fidelity = self.strategy.propose()
            number = max((t.number for t in self.storage.trials()), default=-1) + 1
            trial = TrialRecord(
                number=number,
                arch=self.space.to_string(arch),
                arch_json=self.space.to_json(arch),
                status="running",
                seed=evaluation_seed(self.seed, number),
                asked_seq=self._next_seq(),
                started=time.time(),
                fidelity=fidelity,
            )
            self.storage.add_trial(trial)
        result, error = self._evaluate(arch, trial)
        ok = error is None and not result.failed
        finished = self.storage.finish_trial(
            trial.number,
            status="complete" if ok else "failed",
            objective=float(result.objective) if ok else None,
            reported=None if result is None or result.reported is None else float(result.reported),
            metrics={} if result is None else _clean(result.metrics),
            told_seq=self._next_seq(),
            finished=time.time(),
            error=error if error is not None else (None if ok else "non-finite objective or loss"),
        )
        self.strategy.tell(arch, finished.objective, fidelity=finished.fidelity)
        if self._update_best(finished) and result is not None and result.model is not None:
            self._save_weights(result.model, finished)
        return finished

    def _evaluate(
        self, arch: Architecture, trial: TrialRecord
    ) -> tuple[EvalResult | None, str | None]:
        try:
            result = self.evaluator.evaluate(
                arch, self.space, seed=trial.seed, fidelity=trial.fidelity
            )
        except ArchsearchError:
            raise  # bad configuration, not a bad architecture: stop the study
        except Exception as exc:  # noqa: BLE001  (any failure of one candidate is recorded)
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return None, detail
        return result, None

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq - 1

    def _update_best(self, trial: TrialRecord) -> bool:
        if trial.status != "complete":
            return False
        if self._best is None or trial.objective > self._best.objective:
            self._best = trial
            return True
        return False

    def _save_weights(self, model: Any, trial: TrialRecord) -> None:
        """Keep the best trial's trained weights, so export need not train again."""
        if self.directory is None:
            return
        import torch

        path = self.directory / BEST_WEIGHTS
        tmp = path.with_suffix(".tmp")
        torch.save(
            {"trial": trial.number, "arch": trial.arch, "state_dict": model.state_dict()}, tmp
        )
        os.replace(tmp, path)

    # ---------------------------------------------------------------- results
    @property
    def best(self) -> TrialRecord | None:
        """The completed trial with the highest objective (earliest on ties)."""
        return self._best

    def best_arch(self) -> Architecture | None:
        return None if self._best is None else self.space.from_json(self._best.arch_json)

    def trajectory(self) -> list[dict[str, Any]]:
        """Best-so-far objective and its reported figure after each finished trial."""
        rows, best = [], None
        finished = sorted(
            (t for t in self.storage.trials() if t.status != "running"), key=lambda t: t.told_seq
        )
        for i, t in enumerate(finished, start=1):
            if t.status == "complete" and (best is None or t.objective > best.objective):
                best = t
            rows.append({
                "evaluations": i,
                "trial": t.number,
                "objective": t.objective,
                "best_objective": None if best is None else best.objective,
                "best_reported": None if best is None else best.reported,
            })  # fmt: skip
        return rows

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the study and its result."""
        best = self.best
        trials = self.storage.trials()
        return {
            "config": self.config,
            "n_evaluations": sum(t.status != "running" for t in trials),
            "n_failed": sum(t.status == "failed" for t in trials),
            "elapsed_seconds": round(self.elapsed, 3),
            "objective": self.evaluator.objective_name,
            "reported": self.evaluator.reported_name,
            "best": None if best is None else {
                "trial": best.number,
                "arch": best.arch,
                "objective": best.objective,
                "reported": best.reported,
                "metrics": best.metrics,
            },
        }  # fmt: skip

    def close(self) -> None:
        self.storage.close()

    # ---------------------------------------------------------------- progress
    def _progress_bar(self, budget: Budget):
        from tqdm.auto import tqdm

        total = budget.evaluations
        return tqdm(total=total, initial=self.n_finished if total else 0, desc="search",
                    unit="eval", dynamic_ncols=True)  # fmt: skip

    def _advance(self, bar, budget: Budget) -> None:
        if budget.evaluations is not None:
            bar.update(self.n_finished - bar.n)
        best = self.best
        if best is not None:
            bar.set_postfix(best=f"{best.objective:.4g}", refresh=False)


def _clean(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        value = float(value)
        out[key] = value if math.isfinite(value) else None
    return out


def _normalise(config: Mapping[str, Any]) -> Any:
    import json

    return json.loads(json.dumps(config, sort_keys=True))


def _summary(config: Mapping[str, Any]) -> str:
    parts = [
        f"{k} {config[k].get('name')}" for k in ("space", "strategy", "evaluator") if k in config
    ]
    return ", ".join(parts) + f", seed {config.get('seed')}"
