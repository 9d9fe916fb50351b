"""Storage schema v2 and the storage contract: v1 studies migrate, refused commands never
write, concurrent runners are refused, weights survive a kill, every number is validated."""

import hashlib
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slow_table

from archsearch.cli.main import main
from archsearch.errors import ArchsearchError, StudyError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.space.nb201 import NB201Space
from archsearch.strategy import make_strategy
from archsearch.study import Budget, SQLiteStorage, Study
from archsearch.study.study import BEST_WEIGHTS, PENDING_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
V1 = ROOT / "tests" / "data"


def snapshot(directory: Path) -> dict[str, str]:
    """Every file of a directory and a hash of its bytes."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


@pytest.fixture
def v1_table(tmp_path, monkeypatch):
    """A copy of a schema-v1 study (20 of 40 evaluations) made by the first release."""
    monkeypatch.chdir(ROOT)  # its configuration names the table as ../shared/data/...
    directory = tmp_path / "v1"
    shutil.copytree(V1 / "v1_nb201_table", directory)
    return directory


def test_the_v1_fixture_is_a_real_first_release_file():
    db = sqlite3.connect(f"file:{V1 / 'v1_nb201_table' / 'study.db'}?mode=ro", uri=True)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [row[1] for row in db.execute("PRAGMA table_info(trials)")]
    assert "metrics" in columns and "value_json" not in columns


def test_show_reads_a_v1_study_without_writing(v1_table, capsys):
    before = snapshot(v1_table)
    assert main(["show", str(v1_table), "--json"]) == 0
    out = capsys.readouterr()
    assert '"n_evaluations": 20' in out.out and "migrated" not in out.err
    assert snapshot(v1_table) == before  # not even a WAL checkpoint or a lock file


def test_a_v1_study_resumes_migrates_once_and_ends_like_an_uninterrupted_run(v1_table, capsys):
    study = Study.load(v1_table)
    config = study.config
    first_twenty = [(t.arch, t.objective, t.reported) for t in study.trials]
    study.close()
    assert main(["resume", str(v1_table), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("migrated") == 1 and "schema 1 to schema 2" in err
    resumed = Study.load(v1_table)
    assert resumed.n_finished == 40
    assert [(t.arch, t.objective, t.reported) for t in resumed.trials[:20]] == first_twenty
    assert resumed.trials[0].values["cifar10_valid"] == resumed.trials[0].objective
    straight = Study.from_config({k: v for k, v in config.items()})
    straight.optimize()
    assert [t.arch for t in resumed.trials] == [t.arch for t in straight.trials]
    db = sqlite3.connect(v1_table / "study.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_a_v1_training_study_exports_with_its_kept_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    directory = tmp_path / "train"
    shutil.copytree(V1 / "v1_digits_train", directory)
    before = snapshot(directory)
    assert main(["export", str(directory), "--to", str(tmp_path / "m.pt2")]) == 0
    assert (tmp_path / "m.pt2").is_file()
    assert snapshot(directory) == before


@pytest.mark.parametrize(
    "content", [b"", b"SQLite format 3\x00" + b"\x00" * 100, "foreign"], ids=str
)
def test_a_file_that_is_not_a_study_is_refused_byte_identical(tmp_path, content):
    directory = tmp_path / "s"
    directory.mkdir()
    path = directory / "study.db"
    if content == "foreign":  # a real SQLite database of another program
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE notes (text TEXT)")
        db.commit()
        db.close()
    else:
        path.write_bytes(content)
    before = snapshot(directory)
    for args in (["show", str(directory)], ["resume", str(directory)]):
        assert main(args) == 2
    assert snapshot(directory) == before  # no schema written, no WAL conversion


@pytest.mark.slow
def test_two_searches_started_together_on_one_empty_directory_are_not_mixed(tmp_path, nb201_csv):
    directory = tmp_path / "race"
    directory.mkdir()
    script = Path(slow_table.__file__)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(directory), str(nb201_csv), str(seed)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    refused = [e for e in errors if "being run by another process" in e or "different" in e]
    assert len(refused) == 1, errors
    study = Study.load(directory)
    assert study.n_finished == 60 and len(study.trials) == 60


def test_a_second_resume_loads_the_state_under_the_lock(tmp_path, nb201_csv):
    directory = tmp_path / "s"
    Study.from_config(slow_table.config(nb201_csv, delay=0.0, evaluations=10), directory).close()
    reader = Study.load(directory)  # loaded before a runner holds the lock ...
    runner = Study.load(directory, run=True)
    runner.optimize(n_evaluations=30)
    with pytest.raises(StudyError, match="being run by another process"):
        reader.optimize(n_evaluations=40)  # ... so it may not run on stale state
    runner.close()
    reader.optimize(n_evaluations=40)  # the lock is free: it reloads, then goes on
    assert reader.n_finished == 40 and len(reader.trials) == 40
    assert [t.number for t in reader.trials] == list(range(40))


@pytest.mark.parametrize(
    "flags",
    [
        ["--seconds", "nan"],
        ["--seconds", "inf"],
        ["--budget", "3", "--space-opt", "channels=1e999"],
        ["--budget", "3", "--seed", "-1"],
    ],
)
def test_non_finite_numbers_are_refused_before_anything_is_written(tmp_path, capsys, flags):
    out = tmp_path / "s"
    args = ["search", "--space", "nb201", "--strategy", "random", "--evaluator", "nb201-table"]
    args += ["--table", str(ROOT.parent / "shared/data/nb201/nb201.csv"), "--out", str(out)]
    assert main(args + flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsearch: error:")
    assert not out.exists()


def test_a_step_does_not_reread_every_trial(nb201_csv, monkeypatch):
    study = Study.from_config(slow_table.config(nb201_csv, delay=0.0, evaluations=10))
    calls = []
    original = study.storage.trials
    monkeypatch.setattr(study.storage, "trials", lambda: calls.append(1) or original())
    study.optimize(n_evaluations=200)
    assert len(calls) == 0


class Clock(Evaluator):
    """Records the time limit it is given and spends ``cost`` seconds per evaluation."""

    name = "clock"

    def __init__(self, cost: float = 0.05) -> None:
        self.cost, self.limits = cost, []

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        self.limits.append(time_limit)
        time.sleep(self.cost)
        return EvalResult({"objective": float(seed % 7)})


def test_the_evaluator_is_told_the_seconds_left_and_all_time_is_counted():
    space = NB201Space()
    clock = Clock(0.05)
    study = Study(space, make_strategy("random", space), clock, budget=Budget(seconds=0.5))
    started = time.perf_counter()
    study.optimize()
    wall = time.perf_counter() - started
    assert clock.limits[0] == pytest.approx(0.5, abs=0.05)
    assert all(a > b for a, b in zip(clock.limits, clock.limits[1:], strict=False))
    assert study.elapsed == pytest.approx(wall, rel=0.05)


def test_a_single_objective_strategy_is_refused_several_objectives(nb201_csv):
    config = slow_table.config(nb201_csv, delay=0.0)
    config["objectives"] = [
        {"name": "cifar10_valid", "direction": "max"},
        {"name": "nb201_index", "direction": "min"},
    ]
    with pytest.raises(
        ArchsearchError,
        match="multi-objective strategies: mo-evolution, mo-predictor, nsga2, random",
    ):
        Study.from_config(config)
    config["strategy"] = {"name": "random"}
    study = Study.from_config(config)
    study.optimize(n_evaluations=5)
    assert all(len(o.values) == 2 for o in study.strategy.history)
    assert study.strategy.history[0].values[1] == -study.trials[0].values["nb201_index"]


def test_constraints_mark_trials_infeasible_and_the_best_is_feasible(nb201_csv):
    config = slow_table.config(nb201_csv, delay=0.0, evaluations=40)
    config["constraints"] = [{"name": "nb201_index", "op": "<=", "bound": 7000}]
    study = Study.from_config(config)
    study.optimize()
    infeasible = [t for t in study.trials if t.values["nb201_index"] > 7000]
    assert infeasible and all(t.feasible is False for t in infeasible)
    assert study.best.values["nb201_index"] <= 7000
    observed = {o.arch: o for o in study.strategy.history}
    assert all(observed[study.space.from_json(t.arch_json)].objective is None for t in infeasible)


def test_an_undeclared_value_name_is_refused_with_the_names_it_reports(nb201_csv):
    config = slow_table.config(nb201_csv, delay=0.0)
    config["objectives"] = [{"name": "latency", "direction": "min"}]
    with pytest.raises(ArchsearchError, match="reports no value 'latency'.*cifar10_valid"):
        Study.from_config(config)  # the table's columns are known: refused before evaluating


@pytest.mark.slow
def test_weights_lost_by_a_kill_between_commit_and_save_are_restored(tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(ROOT)
    directory = tmp_path / "train"
    shutil.copytree(V1 / "v1_digits_train", directory)
    study = Study.load(directory)
    best = study.best.number
    study.close()
    kept = torch.load(directory / BEST_WEIGHTS, weights_only=True)
    (directory / BEST_WEIGHTS).unlink()  # what a kill -9 after the commit left behind
    (directory / PENDING_WEIGHTS).write_bytes(b"a pending file of a trial that never finished")
    Study.load(directory, run=True).close()
    restored = torch.load(directory / BEST_WEIGHTS, weights_only=True)
    assert restored["trial"] == best and not (directory / PENDING_WEIGHTS).exists()
    assert restored["state_dict"].keys() == kept["state_dict"].keys()


def test_reading_a_running_study_sees_committed_trials(tmp_path, nb201_csv):
    directory = tmp_path / "s"
    runner = Study.from_config(slow_table.config(nb201_csv, delay=0.0), directory)
    runner.optimize(n_evaluations=12)
    reader = Study.load(directory)
    assert reader.n_finished == 12 and isinstance(reader.storage, SQLiteStorage)
    assert not reader.storage.writable
    runner.close()


@pytest.mark.parametrize(
    "section",
    [
        {"objectives": [{"name": "cifar10_valid", "direction": "up"}]},
        {"objectives": "cifar10_valid"},
        {"objectives": []},
        {"constraints": ["params<=abc"]},
        {"constraints": [{"name": "params", "op": "<", "bound": 3}]},
        {"reported": 3},
        {"objectives": ["cifar10_valid", "cifar10_test"]},  # the reported value as objective
    ],
)
def test_a_bad_declaration_writes_nothing_and_leaves_the_directory_usable(
    tmp_path, nb201_csv, section
):
    directory = tmp_path / "d"
    config = slow_table.config(nb201_csv, delay=0.0, evaluations=3)
    with pytest.raises(ArchsearchError):
        Study.from_config({**config, **section}, directory)
    assert not (directory / "study.db").exists()
    study = Study.from_config(config, directory)  # the same directory, a good configuration
    study.optimize()
    study.close()


@pytest.mark.slow
def test_show_after_a_killed_runner_changes_no_file(tmp_path, nb201_csv):
    directory = tmp_path / "killed"
    script = (
        "import os, sys; sys.path.insert(0, sys.argv[3]); import slow_table\n"
        "from archsearch.study import Study\n"
        "study = Study.from_config(slow_table.config(sys.argv[2], delay=0.0), sys.argv[1])\n"
        "study.optimize(n_evaluations=5)\n"
        "os._exit(0)  # no close: the WAL is left un-checkpointed, as after kill -9\n"
    )
    tests = str(Path(slow_table.__file__).parent)
    subprocess.run(
        [sys.executable, "-c", script, str(directory), str(nb201_csv), tests], check=True
    )
    assert (directory / "study.db-wal").exists()
    before = snapshot(directory)
    assert main(["show", str(directory), "--json"]) == 0
    assert snapshot(directory) == before  # the -shm included
    assert Study.load(directory).n_finished == 5  # and the trials in the WAL are read
