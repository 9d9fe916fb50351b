"""Opening a study someone sent: reading it imports no code it names, writing follows no link."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap

import pytest

from archsearch.cli.main import main

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
