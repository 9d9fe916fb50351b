"""``archsearch to-optuna``: a study written as an Optuna study, trial by trial, from the
study's stored strings only; bad inputs refused in one line; optuna-dashboard serves it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from archsearch.cli.main import main
from archsearch.evaluate.tabular import NB201TableEvaluator
from archsearch.space.nb201 import NB201Space
from archsearch.strategy.base import STRATEGIES
from archsearch.study import Study
from archsearch.study.objectives import Constraint, Declaration, Objective
from archsearch.study.storage import SQLiteStorage, TrialRecord

optuna = pytest.importorskip("optuna")

STATES = {"failed": "FAIL", "infeasible": "PRUNED"}


class Flaky(NB201TableEvaluator):
    """The table, except that a cell with avg_pool_3x3 on its first edge fails."""

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        if arch["1<-0"] == "avg_pool_3x3":
            raise RuntimeError("CUDA out of memory (simulated)")
        return super().evaluate(arch, space, seed=seed, fidelity=fidelity)


def make_study(directory: Path, table: Path, objectives, strategy: str) -> Path:
    """A real study in ``directory``: params<=6e5 is known before evaluating, so some
    proposals are refused; Flaky makes some evaluations fail."""
    directory.mkdir()
    space = NB201Space()
    study = Study(
        space,
        STRATEGIES.get(strategy)(space, seed=1),
        Flaky(str(table)),
        storage=SQLiteStorage.create(directory / "study.db"),
        directory=directory,
        declaration=Declaration(
            objectives=objectives,
            constraints=(Constraint("params", "<=", 6e5), Constraint("cifar10_valid", ">=", 80)),
            reported="cifar10_test",
        ),
    )
    study.optimize(n_evaluations=25)
    study.close()
    return directory


@pytest.fixture(scope="module")
def single(tmp_path_factory, nb201_csv) -> Path:
    """A single-objective study whose last trial is still running."""
    directory = make_study(
        tmp_path_factory.mktemp("single") / "s", nb201_csv, (Objective("cifar10_valid"),), "random"
    )
    storage = SQLiteStorage(directory / "study.db", writable=True)
    last = storage.trials()[-1]
    running = TrialRecord(
        number=last.number + 1, arch="|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        arch_json={label: "none" for label in last.arch_json}, status="running", seed=7,
        asked_seq=(last.told_seq or last.asked_seq) + 1, started=time.time(),
    )  # fmt: skip
    storage.add_trial(running)
    storage.close()
    return directory


@pytest.fixture(scope="module")
def two(tmp_path_factory, nb201_csv) -> Path:
    objectives = (Objective("cifar10_valid", "max"), Objective("params", "min"))
    return make_study(tmp_path_factory.mktemp("two") / "s", nb201_csv, objectives, "random")


def to_optuna(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["to-optuna", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def stored(directory: Path):
    storage = SQLiteStorage(directory / "study.db")
    try:
        return storage.get_meta("config"), list(storage.trials())
    finally:
        storage.close()


def assert_same_trials(directory: Path, url: str, name: str) -> list:
    """Every finished trial, in order, with its params, values, state and attributes."""
    config, trials = stored(directory)
    study = optuna.load_study(study_name=name, storage=url)
    objectives = config["objectives"]
    expected = ["maximize" if o["direction"] == "max" else "minimize" for o in objectives]
    assert [d.name.lower() for d in study.directions] == expected
    finished = [t for t in trials if t.status != "running"]
    converted = study.get_trials(deepcopy=False)
    assert len(converted) == len(finished)
    for mine, theirs in zip(finished, converted, strict=True):
        assert theirs.params == mine.arch_json
        assert theirs.state.name == STATES.get(mine.status, "COMPLETE")
        attrs = theirs.user_attrs
        assert attrs["arch"] == mine.arch
        assert attrs["archsearch_trial"] == mine.number
        assert attrs["archsearch_status"] == mine.status
        assert attrs["archsearch_seed"] == mine.seed
        assert {k: attrs[k] for k in mine.values} == mine.values
        assert theirs.datetime_start.timestamp() == pytest.approx(mine.started, abs=1e-3)
        if mine.status == "complete":
            assert theirs.values == [mine.values[o["name"]] for o in objectives]
            assert attrs["archsearch_feasible"] is mine.feasible
            bounds = [(c["name"], c["op"], c["bound"]) for c in config["constraints"]]
            margins = [
                mine.values[n] - b if op == "<=" else b - mine.values[n] for n, op, b in bounds
            ]
            assert theirs.system_attrs["constraints"] == pytest.approx(margins)
            assert all(m <= 0 for m in margins) is mine.feasible
        else:
            assert theirs.values is None
            reason = attrs["archsearch_reason"]
            assert reason == mine.error if mine.status == "failed" else "params=" in reason
    return converted


def test_a_single_objective_study_converts_trial_by_trial(single, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    code, out, err = to_optuna(capsys, single, "--storage", url, "--study-name", "one")
    assert code == 0, err
    converted = assert_same_trials(single, url, "one")
    states = {t.state.name for t in converted}
    assert states == {"COMPLETE", "FAIL", "PRUNED"}, "the study must hold all three kinds"
    assert "1 running skipped" in out and "choices from the space" in out
    dist = converted[0].distributions["1<-0"]
    assert dist.choices == NB201Space().decisions[0].choices  # every choice, space order
    study = optuna.load_study(study_name="one", storage=url)
    complete = [t for t in converted if t.state.name == "COMPLETE"]
    feasible = [t.value for t in complete if max(t.system_attrs["constraints"]) <= 0]
    assert len(feasible) < len(complete), "cifar10_valid>=80 must make some infeasible"
    assert study.best_trial.value == max(feasible)  # Optuna reads the constraints


def test_a_two_objective_study_converts_trial_by_trial(two, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    code, out, err = to_optuna(capsys, two, "--storage", url)
    assert code == 0, err
    assert "Optuna study 's'" in out  # the default name: the directory's
    converted = assert_same_trials(two, url, "s")
    assert {t.state.name for t in converted} == {"COMPLETE", "FAIL", "PRUNED"}
    assert optuna.load_study(study_name="s", storage=url).best_trials  # a Pareto front


def test_an_existing_study_is_refused_unless_overwritten(two, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert to_optuna(capsys, two, "--storage", url)[0] == 0
    code, out, err = to_optuna(capsys, two, "--storage", url)
    assert code == 2 and not out
    assert err.startswith("archsearch: error: ") and err.count("\n") == 1 and "--overwrite" in err
    assert to_optuna(capsys, two, "--storage", url, "--overwrite")[0] == 0
    assert to_optuna(capsys, two, "--storage", url, "--study-name", "again")[0] == 0
    names = sorted(optuna.get_all_study_names(storage=url))
    assert names == ["again", "s"]
    assert_same_trials(two, url, "s")  # replaced, not doubled


FACTORY_MODULE = "archsearch_test_factory_marker"


@pytest.mark.parametrize("factory", ["no_such_archsearch_module:Net", f"{FACTORY_MODULE}:Net"])
def test_a_define_by_run_study_converts_without_importing_its_factory(
    factory, tmp_path, monkeypatch, capsys
):
    """The factory is a module that does not exist, or one whose import leaves a mark."""
    marker = tmp_path / "imported"
    (tmp_path / f"{FACTORY_MODULE}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef Net(shape, classes): ...\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    directory = tmp_path / "dbr"
    directory.mkdir()
    storage = SQLiteStorage.create(directory / "study.db")
    space = {"name": "define-by-run", "factory": factory, "input_shape": [1, 8, 8]}
    storage.set_meta(
        "config",
        {"space": {**space, "num_classes": 10}, "strategy": {"name": "random"}, "seed": 0,
         "evaluator": {"name": "train"}, "budget": {"evaluations": 3, "seconds": None},
         "objectives": [{"name": "valid_accuracy", "direction": "max"}], "constraints": [],
         "reported": None},
    )  # fmt: skip
    archs = [
        {"depth": 2, "layer0.kernel": 5, "act": "relu", "widths": [8, 16]},
        {"depth": 1, "layer0.kernel": 3, "act": None, "widths": [4]},
        {"depth": 2, "layer0.kernel": 3, "act": "relu", "widths": [8, 16]},
    ]
    for number, arch in enumerate(archs):
        storage.add_trial(
            TrialRecord(
                number=number, arch=json.dumps(arch), arch_json=arch, status="complete",
                seed=number, asked_seq=2 * number, told_seq=2 * number + 1,
                started=1.7e9 + number, finished=1.7e9 + number + 0.5,
                values={"valid_accuracy": 50.0 + number}, objective=50.0 + number, feasible=True,
            )
        )  # fmt: skip
    storage.close()
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    code, out, err = to_optuna(capsys, directory, "--storage", url)
    assert code == 0, err
    assert not marker.exists() and FACTORY_MODULE not in sys.modules
    assert "choices from the stored trials" in out
    trials = optuna.load_study(study_name="dbr", storage=url).trials
    assert [t.value for t in trials] == [50.0, 51.0, 52.0]
    assert trials[1].params == {"depth": 1, "layer0.kernel": 3, "act": None, "widths": "[4]"}
    choices = {k: d.choices for k, d in trials[0].distributions.items()}
    assert choices == {
        "depth": (1, 2), "layer0.kernel": (3, 5), "act": (None, "relu"),
        "widths": ("[4]", "[8, 16]"),
    }  # fmt: skip


def _bad_storages(tmp_path: Path, study: Path) -> dict[str, str]:
    (tmp_path / "text.db").write_text("not a database\n")
    (tmp_path / "a_file").write_text("")
    return {
        "postgres": "postgresql://localhost/optuna",
        "no path": "sqlite:///",
        "memory": "sqlite:///:memory:",
        "options": f"sqlite:///{tmp_path / 'x.db'}?mode=ro",
        "missing directory": f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}",
        "under a file": f"sqlite:///{tmp_path / 'a_file' / 'x.db'}",
        "a directory": f"sqlite:///{tmp_path}",
        "not sqlite": f"sqlite:///{tmp_path / 'text.db'}",
        "the study itself": f"sqlite:///{study / 'study.db'}",
    }


@pytest.mark.parametrize(
    "case",
    ["postgres", "no path", "memory", "options", "missing directory", "under a file",
     "a directory", "not sqlite", "the study itself", "another archsearch study",
     "not a study", "a file as study", "empty study name"],
)  # fmt: skip
def test_bad_inputs_give_one_line_and_exit_2_and_write_nothing(case, two, tmp_path, capsys):
    before = (two / "study.db").read_bytes()
    directory, extra = two, []
    storages = _bad_storages(tmp_path, two)
    url = storages.get(case, f"sqlite:///{tmp_path / 'fresh.db'}")
    if case == "another archsearch study":
        url = f"sqlite:///{two / 'study.db'}"
        directory = tmp_path / "copy"
        directory.mkdir()
        (directory / "study.db").write_bytes(before)
    elif case == "not a study":
        directory = tmp_path / "empty"
        directory.mkdir()
    elif case == "a file as study":
        directory = tmp_path / "a_file"
    elif case == "empty study name":
        extra = ["--study-name", ""]
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    code, out, err = to_optuna(capsys, directory, "--storage", url, *extra)
    assert code == 2 and not out
    assert err.startswith("archsearch: error: ") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing  # nothing written
    assert (two / "study.db").read_bytes() == before


def test_without_optuna_the_command_says_which_extra_to_install(two, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    code, _, err = to_optuna(capsys, two, "--storage", f"sqlite:///{tmp_path / 'o.db'}")
    assert code == 2
    assert err == "archsearch: error: to-optuna needs optuna: pip install 'archsearch[optuna]'\n"
    assert not (tmp_path / "o.db").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def test_optuna_dashboard_serves_the_converted_study(two, tmp_path, capsys):
    pytest.importorskip("optuna_dashboard")
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert to_optuna(capsys, two, "--storage", url, "--study-name", "nas")[0] == 0
    port = _free_port()
    executable = Path(sys.executable).with_name("optuna-dashboard")
    command = (
        [str(executable)] if executable.exists() else [sys.executable, "-m", "optuna_dashboard"]
    )
    server = subprocess.Popen(
        [*command, url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ},
    )  # fmt: skip
    try:
        deadline, status = time.monotonic() + 60, 0
        while time.monotonic() < deadline and server.poll() is None:
            status, _ = _get(f"http://127.0.0.1:{port}/")
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, f"optuna-dashboard did not answer: {server.poll()}"
        status, body = _get(f"http://127.0.0.1:{port}/api/studies")
        assert status == 200
        (summary,) = json.loads(body)["study_summaries"]
        assert summary["study_name"] == "nas"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
