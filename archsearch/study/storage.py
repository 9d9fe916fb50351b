"""Persistent storage of a study: its configuration and every trial.

Why SQLite rather than Optuna's RDB storage: a trial here is an architecture (a canonical
string plus JSON) with several metrics and an ask/tell order that resume replays exactly;
Optuna's schema stores numeric parameters under distributions and has no place for the
replay order. SQLite is in the standard library, transactional (a kill -9 mid-write leaves
the last committed state), and readable with any SQLite tool.

The schema is versioned with ``PRAGMA user_version``; a file of another version or one
that is not a study fails with a clear error instead of being modified.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archsearch.errors import StudyError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    number     INTEGER PRIMARY KEY,
    arch       TEXT NOT NULL,
    arch_json  TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
    objective  REAL,
    reported   REAL,
    metrics    TEXT NOT NULL DEFAULT '{}',
    fidelity   REAL,
    seed       INTEGER NOT NULL,
    asked_seq  INTEGER NOT NULL,
    told_seq   INTEGER,
    started    REAL NOT NULL,
    finished   REAL,
    error      TEXT
);
"""


@dataclass(frozen=True)
class TrialRecord:
    """One evaluation as stored: ``number`` is the ask order, ``*_seq`` the event order."""

    number: int
    arch: str
    arch_json: dict[str, Any]
    status: str
    seed: int
    asked_seq: int
    started: float
    objective: float | None = None
    reported: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    fidelity: float | None = None
    told_seq: int | None = None
    finished: float | None = None
    error: str | None = None

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


class MemoryStorage:
    """Trials in a dict: for benchmarks that run thousands of short studies."""

    def __init__(self) -> None:
        self._meta: dict[str, Any] = {}
        self._trials: dict[int, TrialRecord] = {}

    def get_meta(self, key: str, default: Any = None) -> Any:
        return self._meta.get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        self._meta[key] = value

    def add_trial(self, record: TrialRecord) -> None:
        self._trials[record.number] = record

    def finish_trial(self, number: int, **fields: Any) -> TrialRecord:
        record = replace(self._trials[number], **fields)
        self._trials[number] = record
        return record

    def trials(self) -> list[TrialRecord]:
        return sorted(self._trials.values(), key=lambda t: t.number)

    def close(self) -> None:
        pass


class SQLiteStorage(MemoryStorage):
    """Write-through SQLite storage; reads are served from the in-memory mirror."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._lock = threading.Lock()
        existed = self.path.exists()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if version == 0 and tables == 0:
                existed = False  # created an instant ago by another process: still empty
            if existed and version != SCHEMA_VERSION:
                raise StudyError(
                    f"{self.path} is not an archsearch study of schema {SCHEMA_VERSION} "
                    f"(found version {version})"
                )
            if not existed or version == 0:  # a new file: create the schema, write nothing else
                with self._db:
                    self._db.executescript(_SCHEMA)
                    self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._load()
        except sqlite3.DatabaseError as exc:
            raise StudyError(f"cannot open study database {self.path}: {exc}") from None

    def _load(self) -> None:
        for key, value in self._db.execute("SELECT key, value FROM meta"):
            self._meta[key] = json.loads(value)
        columns = [
            "number", "arch", "arch_json", "status", "seed", "asked_seq", "started", "objective",
            "reported", "metrics", "fidelity", "told_seq", "finished", "error",
        ]  # fmt: skip
        for row in self._db.execute(f"SELECT {', '.join(columns)} FROM trials"):
            data = dict(zip(columns, row, strict=True))
            data["arch_json"] = json.loads(data["arch_json"])
            data["metrics"] = json.loads(data["metrics"])
            self._trials[data["number"]] = TrialRecord(**data)

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )
        super().set_meta(key, value)

    def add_trial(self, record: TrialRecord) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO trials (number, arch, arch_json, status, seed, asked_seq,"
                " started, fidelity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.number, record.arch, json.dumps(record.arch_json), record.status,
                    record.seed, record.asked_seq, record.started, record.fidelity,
                ),
            )  # fmt: skip
        super().add_trial(record)

    def finish_trial(self, number: int, **fields: Any) -> TrialRecord:
        record = replace(self._trials[number], **fields)
        with self._lock, self._db:
            self._db.execute(
                "UPDATE trials SET status=?, objective=?, reported=?, metrics=?, told_seq=?,"
                " finished=?, error=? WHERE number=?",
                (
                    record.status, record.objective, record.reported, json.dumps(record.metrics),
                    record.told_seq, record.finished, record.error, number,
                ),
            )  # fmt: skip
        self._trials[number] = record
        return record

    def close(self) -> None:
        self._db.close()
