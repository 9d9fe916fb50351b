"""Opening a study someone sent: reading it imports no code it names, writing follows no link."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import textwrap

import pytest

from archsearch.cli.main import main
from archsearch.errors import StudyError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.space import make_space
from archsearch.strategy import make_strategy
from archsearch.study import Budget, Study
from archsearch.study.lock import StudyLock
from archsearch.study.storage import SQLiteStorage
from archsearch.study.study import DATABASE

FACTORY = """
from pathlib import Path
from torch import nn
from archsearch.space import choice

Path({marker!r}).write_text("imported")

def build(input_shape, num_classes):
    width = choice("width", [2, 4, 8])
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0] * 4, width),
                         nn.Linear(width, num_classes))
"""


def _module(directory, name, marker):
    (directory / f"{name}.py").write_text(textwrap.dedent(FACTORY.format(marker=str(marker))))


@pytest.fixture
def made(tmp_path, monkeypatch, capsys):
    """A define-by-run study of ``userspace:build``; then its module is forgotten again."""
    code = tmp_path / "code"
    code.mkdir()
    _module(code, "userspace", tmp_path / "userspace.imported")
    _module(code, "crafted", tmp_path / "crafted.imported")
    monkeypatch.syspath_prepend(str(code))
    study = tmp_path / "study"
    argv = [
        "search", "--space", "define-by-run", "--space-opt", "factory=userspace:build",
        "--space-opt", "input_shape=[1,2,2]", "--space-opt", "num_classes=3",
        "--strategy", "random", "--evaluator", "cost", "--budget", "3", "--quiet",
        "--out", str(study),
    ]  # fmt: skip
    assert main(argv) == 0
    for name in ("userspace", "crafted"):  # forgotten for good: no test sees another's
        sys.modules.pop(name, None)
    (tmp_path / "userspace.imported").unlink(missing_ok=True)
    capsys.readouterr()
    return study


def _set_config(study, **space):
    db = sqlite3.connect(study / "study.db")
    (text,) = db.execute("SELECT value FROM meta WHERE key='config'").fetchone()
    config = json.loads(text)
    config["space"].update(space)
    db.execute("UPDATE meta SET value=? WHERE key='config'", (json.dumps(config),))
    db.commit()
    db.close()


READERS = {
    "show": lambda d: ["show", str(d)],
    "show-json": lambda d: ["show", str(d), "--json"],
    "report": lambda d: ["report", str(d), "--to", str(d.parent / "r.html")],
    "plot": lambda d: ["plot", str(d), "--kind", "importance", "--to", str(d.parent / "p.png")],
    "rules": lambda d: ["rules", str(d)],
}


@pytest.mark.parametrize("reader", list(READERS))
def test_reading_a_study_imports_no_module_it_names(made, reader, capsys):
    _set_config(made, factory="crafted:build")
    assert main(READERS[reader](made)) == 0, capsys.readouterr().err
    assert not (made.parent / "crafted.imported").exists()
    assert "crafted" not in sys.modules and "userspace" not in sys.modules


def test_a_study_stored_before_its_decisions_is_read_from_its_trials(made, capsys):
    db = sqlite3.connect(made / "study.db")
    db.execute("DELETE FROM meta WHERE key='space_decisions'")
    db.commit()
    db.close()
    assert main(["rules", str(made), "--json"]) == 0
    assert not (made.parent / "userspace.imported").exists()


def test_resume_says_which_factory_it_imports(made, capsys):
    _set_config(made, factory="crafted:build")
    assert main(["resume", str(made), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "importing the space factory crafted:build named by the study" in err
    assert (made.parent / "crafted.imported").exists()


def test_a_factory_not_importable_here_is_refused_before_any_import(made, capsys):
    _set_config(made, factory="nowhere_to_be_found.sub:build")
    for argv in (["resume", str(made)], ["export", str(made), "--to", str(made.parent / "m")]):
        assert main(argv) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("archsearch: error:") and "not importable here" in line


def test_a_factory_that_came_with_the_study_is_never_imported(made, monkeypatch, capsys):
    _module(made, "bundled", made.parent / "bundled.imported")
    monkeypatch.syspath_prepend(str(made))  # even when the study directory is on the path
    _set_config(made, factory="bundled:build")
    assert main(["resume", str(made)]) == 2
    assert "inside the study directory" in capsys.readouterr().err
    assert not (made.parent / "bundled.imported").exists()


def test_a_stored_space_name_resolves_only_to_archsearch_components(made, capsys):
    _set_config(made, name="crafted")
    assert main(["show", str(made)]) == 2
    assert "unknown space 'crafted'" in capsys.readouterr().err
    assert not (made.parent / "crafted.imported").exists()


class KeepsModel(Evaluator):
    """Scores an architecture by its first choice and keeps a tiny model, as training does."""

    name = "keeps-model"
    keeps_model = True

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        import torch

        return EvalResult({"objective": float(seed % 97)}, model=torch.nn.Linear(1, 1))


def _run_study(directory):
    """A three-trial study that writes pending and best weights in ``directory``."""
    space = make_space("nb201")
    strategy = make_strategy("random", space, seed=0)
    directory.mkdir(exist_ok=True)
    lock = StudyLock(directory)
    storage = SQLiteStorage.open(directory / DATABASE)
    study = Study(
        space, strategy, KeepsModel(), budget=Budget(evaluations=3), storage=storage,
        directory=directory, lock=lock,
    )  # fmt: skip
    try:
        study.optimize()
    finally:
        study.close()


PLANTED = [
    "study.lock", "study.db", "study.db-wal", "best_weights.pt", "best_weights.pending.pt",
    f".best_weights.pt.{os.getpid()}.tmp", f".best_weights.pending.pt.{os.getpid()}.tmp",
    f".study.db.{os.getpid()}.tmp",
]  # fmt: skip


@pytest.mark.parametrize("name", PLANTED)
def test_writes_in_a_study_directory_never_follow_a_planted_link(tmp_path, name):
    outside = tmp_path / "outside"
    outside.write_bytes(b"not yours")
    directory = tmp_path / "study"
    directory.mkdir()
    (directory / name).symlink_to(outside)
    try:
        _run_study(directory)
    except StudyError as exc:
        assert "\n" not in str(exc)
    else:
        assert (directory / "best_weights.pt").is_file()
    assert outside.read_bytes() == b"not yours"


@pytest.mark.parametrize("name", ["study.lock", "study.db", "study.db-wal"])
def test_a_command_refuses_a_planted_link_with_one_error_line(tmp_path, capsys, nb201_csv, name):
    outside = tmp_path / "outside"
    outside.write_bytes(b"not yours")
    directory = tmp_path / "study"
    argv = [
        "search", "--space", "nb201", "--strategy", "random", "--evaluator", "nb201-table",
        "--table", str(nb201_csv), "--dataset", "cifar10", "--budget", "3", "--quiet",
        "--out", str(directory),
    ]  # fmt: skip
    assert main(argv) == 0
    (directory / name).unlink(missing_ok=True)
    (directory / name).symlink_to(outside)
    capsys.readouterr()
    status = main(["resume", str(directory), "--quiet"])
    err = capsys.readouterr().err.splitlines()
    refused = status == 2 and len(err) == 1 and err[0].startswith("archsearch: error:")
    assert status == 0 or refused, err
    assert outside.read_bytes() == b"not yours"
