"""A stored study with corrupted fields is refused with one error line, never a traceback.

A study is a file people send each other, so every command that opens one (show, resume,
export, report, rules) must survive whatever its meta table and trial rows hold: wrong
types, NULLs, non-numeric seeds and times, a budget that is not a mapping, NaN, huge or
absurdly nested JSON. Hypothesis mutates a copy of one small real study per example.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.cli.main import main

#: the columns of a version-2 trials table (archsearch/study/storage.py)
TRIAL_COLUMNS = (
    "number", "arch", "arch_json", "status", "objective", "reported", "value_json", "feasible",
    "fidelity", "seed", "asked_seq", "told_seq", "started", "finished", "error", "origin",
)  # fmt: skip
#: paths into the stored configuration that commands read
CONFIG_PATHS = (
    ("seed",), ("budget",), ("budget", "evaluations"), ("budget", "seconds"), ("space",),
    ("space", "name"), ("strategy",), ("strategy", "name"), ("strategy", "population_size"),
    ("evaluator",), ("evaluator", "name"), ("evaluator", "table"), ("evaluator", "dataset"),
    ("objectives",), ("objectives", 0), ("objectives", 0, "name"),
    ("objectives", 0, "direction"), ("constraints",), ("reported",), ("screen",),
    ("oneshot",), ("soft_constraints",),
)  # fmt: skip
META_KEYS = (
    "config", "elapsed", "screen_ranking", "pareto", "oneshot_training", "oneshot_epochs",
)  # fmt: skip


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


#: values that commands must refuse or survive; no positive huge integer, which would be a
#: real (long) budget rather than a corrupt one
junk_values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([-1, 0, 3, -(2**64), 2**64 + 0.5, 1e308]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["nan", "12abc", "", "1e999", "Infinity", "complete", "strategy"]),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=3),
    st.integers(1, 200).map(lambda n: json.loads(_nested(n))),
)
#: raw JSON texts stored as they are (invalid, absurdly nested, huge, NaN)
junk_texts = st.one_of(
    junk_values.map(json.dumps),
    st.sampled_from(["{", "NaN", "[1, NaN]", "Infinity", "-Infinity", "1e999", "nul", ""]),
    st.integers(500, 200_000).map(_nested),
    st.just("[" + "1," * 200_000 + "1]"),
)
#: values written into trial columns (SQLite stores a NaN as NULL)
junk_cells = st.one_of(
    junk_values.filter(lambda v: not isinstance(v, list | dict)).map(
        lambda v: str(v) if isinstance(v, int) and abs(v) >= 2**63 else v  # SQLite's range
    ),
    junk_texts,
    st.binary(max_size=8),
)

config_mutation = st.tuples(st.just("config"), st.sampled_from(CONFIG_PATHS), junk_values)
meta_mutation = st.tuples(st.just("meta"), st.sampled_from(META_KEYS), junk_texts)
trial_mutation = st.tuples(
    st.just("trial"), st.tuples(st.integers(0, 9), st.sampled_from(TRIAL_COLUMNS)), junk_cells
)
mutations = st.lists(
    st.one_of(config_mutation, meta_mutation, trial_mutation), min_size=1, max_size=3
)


@pytest.fixture(scope="module")
def made(tmp_path_factory, nb201_csv) -> Path:
    """One small real study (ten table lookups), copied by every example."""
    out = tmp_path_factory.mktemp("made") / "study"
    argv = [
        "search", "--space", "nb201", "--strategy", "evolution", "--evaluator", "nb201-table",
        "--table", str(nb201_csv), "--dataset", "cifar10", "--budget", "10", "--quiet",
        "--out", str(out),
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    return out


def _with(node: Any, path: tuple, value: Any) -> Any:
    """``node`` with ``node[path] = value``, containers made where the path needs them
    (an integer key is index 0 of a list)."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(key, int):
        items = list(node) if isinstance(node, list) and node else [None]
        items[0] = _with(items[0], rest, value)
        return items
    mapping = dict(node) if isinstance(node, dict) else {}
    mapping[key] = _with(mapping.get(key), rest, value)
    return mapping


def _unconstrain(db: sqlite3.Connection) -> None:
    """Recreate the trials table without constraints, as a crafted file may hold it."""
    db.executescript(
        "CREATE TABLE loose AS SELECT * FROM trials; DROP TABLE trials;"
        " ALTER TABLE loose RENAME TO trials;"
    )


def _mutate(path: Path, changes: list[tuple[str, Any, Any]]) -> None:
    db = sqlite3.connect(path)
    try:
        _unconstrain(db)
        for kind, where, value in changes:
            if kind == "config":
                (text,) = db.execute("SELECT value FROM meta WHERE key='config'").fetchone()
                with contextlib.suppress(ValueError, RecursionError):  # already corrupted
                    text = json.dumps(_with(json.loads(text), where, value))
                db.execute("UPDATE meta SET value=? WHERE key='config'", (text,))
            elif kind == "meta":
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (where, value))
            else:
                number, column = where
                db.execute(f"UPDATE trials SET {column}=? WHERE number=?", (value, number))
        db.commit()
    finally:
        db.close()


COMMANDS = {
    "show": lambda d, out: ["show", str(d)],
    "show-json": lambda d, out: ["show", str(d), "--json"],
    "resume": lambda d, out: ["resume", str(d), "--quiet"],
    "export": lambda d, out: ["export", str(d), "--to", str(out / "model.pt2")],
    "report": lambda d, out: ["report", str(d), "--to", str(out / "report.html")],
    "rules": lambda d, out: ["rules", str(d)],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_corrupted_study_gives_one_error_line_or_works(made, command):
    @settings(
        max_examples=int(os.environ.get("CORRUPT_EXAMPLES", 40)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(changes=mutations)
    def check(changes):
        with tempfile.TemporaryDirectory() as scratch:
            study = Path(scratch) / "study"
            shutil.copytree(made, study)
            _mutate(study / "study.db", changes)
            stdout, stderr = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                status = main(COMMANDS[command](study, Path(scratch)))
            lines = stderr.getvalue().splitlines()
            assert status in (0, 2), (status, lines)
            if status == 2:
                assert len(lines) == 1 and lines[0].startswith("archsearch: error:"), lines

    check()
