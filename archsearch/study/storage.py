"""Persistent storage of a study: its configuration and every trial.

Why SQLite rather than Optuna's RDB storage: a trial here is an architecture (a canonical
string plus JSON) with many named values and an ask/tell order that resume replays exactly;
Optuna's schema stores numeric parameters under distributions and has no place for the
replay order. SQLite is in the standard library, transactional (a kill -9 mid-write leaves
the last committed state), and readable with any SQLite tool.

The storage contract (:class:`Storage`), which every backend keeps:

* **Atomic.** Each call that writes (``set_meta``, ``add_trial``, ``finish_trial``) is one
  transaction: after a crash the file holds the state before or after the call, never half.
* **Persistent.** A call that returned is on disk; a study reopened after kill -9 sees it.
* **Ownership.** One process, the study's *runner*, writes a study; it holds ``study.lock``
  in the study directory from before it reads the stored state until it closes. A trial in
  status ``running`` belongs to that runner; a runner that opens a study whose trials are
  ``running`` (its predecessor died) re-queues them.
* **Concurrent readers.** Any number of processes may read while the runner writes (WAL
  mode): they see the last committed trial. Opening for reading never writes, not even to
  convert the journal: a refused or inspecting command leaves the file byte-identical.

Schema versions (``PRAGMA user_version``): 1 stored one ``objective`` and one ``reported``
number per trial plus a ``metrics`` JSON; 2 stores every named value in ``value_json`` and a
``feasible`` flag, and keeps ``objective``/``reported`` as copies of the primary objective and
the reported value so that SQL tools can sort trials. A version-1 file is read as is and
migrated, in one transaction, on its first write. The ``origin`` column (who chose the
architecture, see :data:`ORIGINS`) came within version 2: a file without it reads every
trial as ``strategy`` and gains the column on its first write; so did ``attempts`` (how many
times the trial's evaluation was started: a retry after a worker died, or a resume of an
interrupted trial, counts one more), read as 1 from a file without it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archsearch.checks import SEED_LIMIT
from archsearch.errors import StudyError
from archsearch.study.lock import is_held

SCHEMA_VERSION = 2
KNOWN_VERSIONS = (1, 2)
STATUSES = ("running", "complete", "failed", "infeasible")
_SQLITE_HEADER = b"SQLite format 3\x00"
#: the deepest JSON nesting a stored value may have: archsearch writes at most a few levels,
#: and a crafted file's deeper one would exhaust the recursion limit of whatever reads it
MAX_JSON_DEPTH = 32

_TRIALS = """CREATE TABLE {name} (
    number     INTEGER PRIMARY KEY,
    arch       TEXT NOT NULL,
    arch_json  TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed', 'infeasible')),
    objective  REAL,
    reported   REAL,
    value_json TEXT NOT NULL DEFAULT '{{}}',
    feasible   INTEGER,
    fidelity   REAL,
    seed       INTEGER NOT NULL,
    asked_seq  INTEGER NOT NULL,
    told_seq   INTEGER,
    started    REAL NOT NULL,
    finished   REAL,
    error      TEXT,
    origin     TEXT NOT NULL DEFAULT 'strategy',
    attempts   INTEGER NOT NULL DEFAULT 1
)"""
_SCHEMA = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n" + _TRIALS.format(
    name="trials"
)

_COLUMNS = (
    "number", "arch", "arch_json", "status", "seed", "asked_seq", "started", "objective",
    "reported", "fidelity", "told_seq", "finished", "error", "origin", "attempts",
)  # fmt: skip
#: columns added within schema 2, and the value a file without them reads for every trial
_ADDED = {"origin": ("TEXT NOT NULL DEFAULT 'strategy'", "'strategy'"),
          "attempts": ("INTEGER NOT NULL DEFAULT 1", "1")}  # fmt: skip
#: who chose a trial's architecture: the study's strategy, a screening step, or a one-shot
#: method (its derived architecture); only ``strategy`` trials are asked of the strategy
ORIGINS = ("strategy", "screen", "oneshot")


def dumps(value: Any) -> str:
    """Strict JSON: NaN and infinities are refused, since other JSON readers reject them."""
    try:
        return json.dumps(value, allow_nan=False, sort_keys=True)
    except ValueError as exc:
        raise StudyError(f"cannot store a non-finite number: {exc}") from None


def loads(text: Any, what: str) -> Any:
    """Strict JSON as :func:`dumps` writes it, from a file that may be crafted: text only, no
    NaN or infinities (``1e999`` included), at most :data:`MAX_JSON_DEPTH` levels deep."""
    if not isinstance(text, str):
        raise StudyError(f"{what} is not JSON text but {type(text).__name__}")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise StudyError(f"{what} is JSON nested too deeply") from None
    except ValueError as exc:
        raise StudyError(f"{what} is not valid JSON: {exc}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise StudyError(f"{what} is JSON nested over {MAX_JSON_DEPTH} levels deep")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is not a finite number")
    return number


def _depth(value: Any) -> int:
    """How deeply containers nest in ``value``, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                children = node.values() if isinstance(node, dict) else node
                stack.extend((child, level + 1) for child in children)
    return deepest


@dataclass(frozen=True)
class TrialRecord:
    """One evaluation as stored: ``number`` is the ask order, ``*_seq`` the event order.

    ``values`` holds every named value the evaluator returned; ``objective`` and ``reported``
    are the study's primary objective and reported value among them (as the study declared
    them when the trial finished); ``feasible`` is False when a declared constraint fails.
    """

    number: int
    arch: str
    arch_json: dict[str, Any]
    status: str
    seed: int
    asked_seq: int
    started: float
    objective: float | None = None
    reported: float | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    feasible: bool | None = None
    fidelity: float | None = None
    told_seq: int | None = None
    finished: float | None = None
    error: str | None = None
    origin: str = "strategy"
    attempts: int = 1

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


class Storage:
    """Where a study keeps its configuration and trials; see the module docstring.

    This base class keeps everything in memory (benchmarks run thousands of short studies);
    :class:`SQLiteStorage` writes through to a file. Reads are served from memory, and
    ``trials()`` is cached between writes, so a step's cost does not grow with the study.
    """

    def __init__(self) -> None:
        self._meta: dict[str, Any] = {}
        self._trials: dict[int, TrialRecord] = {}
        self._sorted: list[TrialRecord] | None = None

    def get_meta(self, key: str, default: Any = None) -> Any:
        return self._meta.get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        dumps(value)  # the same values are refused in memory as on disk
        self._meta[key] = value

    def add_trial(self, record: TrialRecord) -> None:
        self._trials[record.number] = record
        self._sorted = None

    def finish_trial(self, number: int, **fields: Any) -> TrialRecord:
        record = replace(self._trials[number], **fields)
        self._trials[number] = record
        self._sorted = None
        return record

    def update_trial(self, number: int, **fields: Any) -> TrialRecord:
        """Change fields of a trial that goes on running (its ``attempts`` on a restart)."""
        return self.finish_trial(number, **fields)

    def trial(self, number: int) -> TrialRecord:
        return self._trials[number]

    def trials(self) -> list[TrialRecord]:
        """Every trial in ask order (a cached list: do not modify it)."""
        if self._sorted is None:
            self._sorted = sorted(self._trials.values(), key=lambda t: t.number)
        return self._sorted

    def __len__(self) -> int:
        return len(self._trials)

    def close(self) -> None:
        pass


#: kept for code written against the first release
MemoryStorage = Storage


def check_study_file(path: Path) -> None:
    """Refuse, without writing anything, a file that cannot be an SQLite database."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise StudyError(f"cannot read study database {path}: {exc.strerror}") from None
    if not header:
        raise StudyError(f"{path} is empty, not an archsearch study")
    if header != _SQLITE_HEADER:
        raise StudyError(f"{path} is not an SQLite database, so not an archsearch study")


def refuse_links(path: Path) -> None:
    """Refuse to write a study whose database, or a journal SQLite would write beside it, is
    a symbolic link: the write would land in whatever file the link points to."""
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"):
        if (path.parent / name).is_symlink():
            raise StudyError(
                f"{path.parent / name} is a symbolic link; a study is not written through one"
            )


class SQLiteStorage(Storage):
    """Write-through SQLite storage; reads are served from the in-memory mirror.

    ``SQLiteStorage(path)`` opens an existing study read-only: it checks that the file is an
    archsearch study of a known schema before anything could write to it. ``writable=True``
    (only the lock-holding runner asks for it) then switches the journal to WAL and migrates
    an older schema on the first write. ``SQLiteStorage.create(path)`` makes a new file.
    """

    def __init__(self, path: str | Path, *, writable: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.writable = writable
        self._lock = threading.Lock()
        check_study_file(self.path)
        if writable:
            refuse_links(self.path)
        try:
            with tempfile.TemporaryDirectory(prefix="archsearch-read-") as scratch:
                self._db = sqlite3.connect(
                    self._read_only_uri(Path(scratch)), uri=True, check_same_thread=False,
                    timeout=30,
                )  # fmt: skip
                self.version = self._check_schema()
                self._load()
                self._db.close()  # a reader holds everything in memory from here on
            if writable:
                self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
                self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise StudyError(f"cannot open study database {self.path}: {exc}") from None

    def _read_only_uri(self, scratch: Path) -> str:
        """A URI that reads the last committed state without changing any file beside it.

        * No ``-wal`` file: no runner is writing (a runner in WAL mode keeps one), so the file
          is read as immutable and SQLite creates no ``-shm``/``-wal`` files.
        * A ``-wal`` and a live runner (it holds ``study.lock``), or this is the runner: a
          plain read-only connection, which shares the runner's ``-shm``.
        * A ``-wal`` but no runner (one was killed before it checkpointed): even a read-only
          connection would write its read marks into the ``-shm``, so the file and its WAL
          are copied to ``scratch`` and the copy is read.
        """
        wal = self.path.with_name(self.path.name + "-wal")
        if not wal.exists():
            return f"file:{self.path}?mode=ro&immutable=1"
        if self.writable or is_held(self.path.parent):
            return f"file:{self.path}?mode=ro"
        copy = scratch / self.path.name
        shutil.copyfile(self.path, copy)
        shutil.copyfile(wal, scratch / wal.name)
        return f"file:{copy}?mode=ro"

    @classmethod
    def create(cls, path: str | Path) -> SQLiteStorage:
        """A new study file; refuses to touch an existing one.

        The schema is written to a temporary file beside ``path`` and linked into place
        (``os.link`` fails if ``path`` exists), so another process sees either no file or a
        complete, empty study, never a half-written schema.
        """
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise StudyError(f"cannot create {path}: {exc.strerror}") from None
        os.close(fd)
        try:
            db = sqlite3.connect(str(tmp))
            try:
                db.executescript(f"BEGIN; {_SCHEMA}; PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
            finally:
                db.close()
            os.link(tmp, path)
        except FileExistsError:
            raise StudyError(f"{path} exists: another process created a study there") from None
        except OSError as exc:
            raise StudyError(f"cannot create {path}: {exc.strerror}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return cls(path, writable=True)

    @classmethod
    def open(cls, path: str | Path) -> SQLiteStorage:
        """For writing: the study file at ``path``, created when there is none yet."""
        return cls(path, writable=True) if Path(path).exists() else cls.create(path)

    def _check_schema(self) -> int:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        if version not in KNOWN_VERSIONS or not {"meta", "trials"} <= tables:
            raise StudyError(
                f"{self.path} is not an archsearch study of schema "
                f"{'/'.join(map(str, KNOWN_VERSIONS))} (found version {version}, "
                f"tables {sorted(tables) or 'none'})"
            )
        return version

    def _load(self) -> None:
        for key, value in self._db.execute("SELECT key, value FROM meta"):
            if not isinstance(key, str):
                raise StudyError(f"{self.path}: a meta key is {type(key).__name__}, not text")
            self._meta[key] = loads(value, f"{self.path}: meta {key!r}")
        values_column = "value_json" if self.version >= 2 else "metrics"
        feasible = "feasible" if self.version >= 2 else "NULL"
        present = {row[1] for row in self._db.execute("PRAGMA table_info(trials)")}
        self._missing = [c for c in _ADDED if c not in present]
        columns = [c if c in present else f"{_ADDED[c][1]} AS {c}" for c in _COLUMNS]
        query = f"SELECT {', '.join(columns)}, {values_column}, {feasible} FROM trials"
        for row in self._db.execute(query):
            record = _record(row, self.version == 1, self.path)
            if record.number in self._trials:
                raise StudyError(f"{self.path}: trial {record.number} is stored twice")
            self._trials[record.number] = record

    def adopt_v1_names(self, objective: str, reported: str | None) -> None:
        """Name a version-1 file's two numbers: the evaluator's objective and reported value.

        Version 1 stored them without names; the study that opens the file knows them from
        its evaluator. Only the in-memory records change until the first write migrates.
        """
        if self.version != 1:
            return
        for number, trial in list(self._trials.items()):
            values = dict(trial.values)
            if trial.objective is not None:
                values[objective] = trial.objective
            if reported is not None and trial.reported is not None:
                values[reported] = trial.reported
            self._trials[number] = replace(trial, values=values)
        self._sorted = None

    def _migrate(self) -> None:
        """Rewrite a version-1 file as version 2, in one transaction, on the first write."""
        if self.version == SCHEMA_VERSION:
            if self._missing:  # a version-2 file written before these columns existed
                with self._db:
                    for column in self._missing:
                        self._db.execute(
                            f"ALTER TABLE trials ADD COLUMN {column} {_ADDED[column][0]}"
                        )
                self._missing = []
            return
        db = self._db
        db.isolation_level = None  # explicit BEGIN/COMMIT: DDL and DML in one transaction
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute(_TRIALS.format(name="trials_v2"))
            for trial in self._trials.values():
                self._insert(trial, table="trials_v2")
            db.execute("DROP TABLE trials")
            db.execute("ALTER TABLE trials_v2 RENAME TO trials")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.isolation_level = ""
        self._missing = []
        print(
            f"archsearch: migrated {self.path} from schema 1 to schema {SCHEMA_VERSION}",
            file=sys.stderr,
        )
        self.version = SCHEMA_VERSION

    def _write(self, sql: str, parameters: tuple[Any, ...]) -> None:
        if not self.writable:
            raise StudyError(f"{self.path} is open for reading only")
        with self._lock:
            self._migrate()
            with self._db:
                self._db.execute(sql, parameters)

    def _insert(self, record: TrialRecord, table: str = "trials") -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO {table} ({', '.join(_COLUMNS)}, value_json, feasible)"
            f" VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})",
            (
                record.number, record.arch, dumps(record.arch_json), record.status, record.seed,
                record.asked_seq, record.started, record.objective, record.reported,
                record.fidelity, record.told_seq, record.finished, record.error, record.origin,
                record.attempts, dumps(_finite(record.values)),
                None if record.feasible is None else int(record.feasible),
            ),
        )  # fmt: skip

    def set_meta(self, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, dumps(value)))
        super().set_meta(key, value)

    def add_trial(self, record: TrialRecord) -> None:
        if not self.writable:
            raise StudyError(f"{self.path} is open for reading only")
        with self._lock:
            self._migrate()
            with self._db:
                self._insert(record)
        super().add_trial(record)

    def finish_trial(self, number: int, **fields: Any) -> TrialRecord:
        record = replace(self._trials[number], **fields)
        self._write(
            "UPDATE trials SET status=?, objective=?, reported=?, value_json=?, feasible=?,"
            " told_seq=?, finished=?, error=?, attempts=? WHERE number=?",
            (
                record.status, record.objective, record.reported, dumps(_finite(record.values)),
                None if record.feasible is None else int(record.feasible), record.told_seq,
                record.finished, record.error, record.attempts, number,
            ),
        )  # fmt: skip
        return super().finish_trial(number, **fields)

    def close(self) -> None:
        if self.writable:
            self._db.close()


def _record(row: tuple[Any, ...], v1: bool, path: Path) -> TrialRecord:
    """A stored trial row as a record, every field checked: a crafted or damaged file fails
    here, once, with the field it got wrong, instead of wherever a command reads it."""
    data = dict(zip(_COLUMNS, row[: len(_COLUMNS)], strict=True))
    number = data["number"] = _integer(data["number"], f"{path}: a trial's number")
    where = f"{path}: trial {number}"
    for name in ("seed", "asked_seq", "attempts"):
        data[name] = _integer(data[name], f"{where}'s {name}")
    if data["attempts"] < 1:
        raise StudyError(f"{where}'s attempts {data['attempts']} is not a count >= 1")
    if not 0 <= data["seed"] < SEED_LIMIT:
        raise StudyError(f"{where}'s seed {data['seed']} is outside 0..2**63-1")
    data["started"] = _number(data["started"], f"{where}'s start time")
    for name in ("objective", "reported", "fidelity", "finished"):
        data[name] = _optional(_number, data[name], f"{where}'s {name}")
    data["told_seq"] = _optional(_integer, data["told_seq"], f"{where}'s told_seq")
    for name in ("arch", "error"):
        if not isinstance(data[name], str) and (name == "arch" or data[name] is not None):
            raise StudyError(f"{where}'s {name} is {type(data[name]).__name__}, not text")
    _one_of(data["status"], STATUSES, f"{where}'s status")
    _one_of(data["origin"], ORIGINS, f"{where}'s origin")
    arch = loads(data["arch_json"], f"{where}'s arch_json")
    data["arch_json"] = _mapping(arch, where, "arch", nested=True)
    data["values"] = _mapping(loads(row[-2], f"{where}'s values"), where, "values")
    for name, value in data["values"].items():
        _optional(_number, value, f"{where}'s value {name!r}")
    feasible = row[-1]
    if feasible not in (None, 0, 1) or isinstance(feasible, float):
        raise StudyError(f"{where}'s feasible flag is {_short(feasible)}, not 0, 1 or NULL")
    data["feasible"] = True if v1 and data["status"] == "complete" else _flag(feasible)
    _check_finished(data, where)
    return TrialRecord(**data)


def _check_finished(data: dict[str, Any], where: str) -> None:
    """A finished trial has its tell and finish time; a complete one its objective."""
    if data["status"] == "running":
        return
    missing = [name for name in ("told_seq", "finished") if data[name] is None]
    if data["status"] == "complete" and data["objective"] is None:
        missing.append("objective")
    if missing:
        raise StudyError(f"{where} is {data['status']} but has no {', '.join(missing)}")


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StudyError(f"{what} is {_short(value)}, not an integer")
    return value


def _number(value: Any, what: str) -> float:
    """``value`` itself when it is a finite number (an integer too large for a float is not)."""
    try:
        finite = not isinstance(value, bool) and math.isfinite(value)
    except (TypeError, OverflowError):
        finite = False
    if not finite:
        raise StudyError(f"{what} is {_short(value)}, not a finite number")
    return value


def _short(value: Any) -> str:
    """``repr(value)``, cut short: a crafted file's value may be megabytes long."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _optional(check: Any, value: Any, what: str) -> Any:
    return None if value is None else check(value, what)


def _one_of(value: Any, known: tuple[str, ...], what: str) -> None:
    if value not in known or not isinstance(value, str):
        raise StudyError(f"{what} is {_short(value)}, not one of {', '.join(known)}")


def _mapping(value: Any, where: str, what: str, *, nested: bool = False) -> dict[str, Any]:
    """A JSON object whose values are plain numbers, strings, booleans or null; ``nested``
    also admits lists and objects (a user space's choice may be a list of widths; the
    space's own ``from_json`` then judges it, and :func:`loads` has bounded the depth)."""
    if not isinstance(value, dict):
        raise StudyError(f"{where}'s {what} is not a JSON object")
    if nested:
        return value
    bad = [key for key, item in value.items() if isinstance(item, dict | list)]
    if bad:
        raise StudyError(f"{where}'s {what} holds a nested value at {bad[0]!r}")
    return value


def _finite(values: dict[str, Any]) -> dict[str, float | None]:
    """Named values as stored: a NaN or infinite value becomes null (JSON has neither)."""
    out: dict[str, float | None] = {}
    for key, value in values.items():
        number = None if value is None else float(value)
        out[key] = number if number is not None and math.isfinite(number) else None
    return out
