import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archsearch.errors import ArchsearchError, StudyError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.space import NB201Space
from archsearch.strategy import make_strategy
from archsearch.study import Budget, Study

sys.path.insert(0, str(Path(__file__).parent))
import slow_table  # noqa: E402  (registers the slow evaluator)


def table_config(table, strategy="evolution", seed=0, evaluations=100):
    return {
        "space": {"name": "nb201"},
        "strategy": {"name": strategy},
        "evaluator": {"name": "nb201-table", "table": str(table), "dataset": "cifar10"},
        "seed": seed,
        "budget": {"evaluations": evaluations, "seconds": None},
    }


class Flaky(Evaluator):
    """Raises on every third call and returns NaN on every fifth."""

    name = "flaky"

    def __init__(self):
        self.calls = 0

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        self.calls += 1
        if self.calls % 3 == 0:
            raise RuntimeError("CUDA out of memory (simulated)")
        if self.calls % 5 == 0:
            return EvalResult({"objective": 1.0, "loss": math.nan})
        return EvalResult({"objective": float(list(arch.values()).count("nor_conv_3x3"))})


def test_every_finished_evaluation_is_stored_with_its_metrics(tmp_path, nb201_csv):
    study = Study.from_config(table_config(nb201_csv, evaluations=15), tmp_path / "s")
    study.optimize()
    study.close()
    reopened = Study.load(tmp_path / "s")
    trials = reopened.trials
    assert len(trials) == 15 and all(t.status == "complete" for t in trials)
    assert all(t.objective is not None and t.reported is not None for t in trials)
    assert len({t.seed for t in trials}) == 15
    assert reopened.best.objective == max(t.objective for t in trials)


def test_failed_and_nan_evaluations_are_stored_as_failed_and_the_search_goes_on():
    space = NB201Space()
    study = Study(space, make_strategy("random", space), Flaky(), budget=Budget(15))
    study.optimize()
    statuses = [t.status for t in study.trials]
    assert len(statuses) == 15 and statuses.count("failed") == 7  # calls 3,5,6,9,10,12,15
    assert any("out of memory" in (t.error or "") for t in study.trials)
    assert study.best.status == "complete"


@pytest.mark.slow
def test_resumed_study_ends_exactly_like_an_uninterrupted_one(tmp_path, nb201_csv):
    for strategy in ["random", "evolution", "local"]:
        straight = Study.from_config(table_config(nb201_csv, strategy, seed=5))
        straight.optimize()
        directory = tmp_path / strategy
        first = Study.from_config(table_config(nb201_csv, strategy, seed=5), directory)
        first.optimize(n_evaluations=37)
        first.close()
        resumed = Study.load(directory)
        resumed.optimize()
        assert [t.arch for t in resumed.trials] == [t.arch for t in straight.trials], strategy
        assert resumed.best.arch == straight.best.arch


@pytest.mark.slow
def test_kill_9_during_an_evaluation_loses_nothing_completed(tmp_path, nb201_csv):
    directory = tmp_path / "killed"
    script = Path(slow_table.__file__)
    proc = subprocess.Popen([sys.executable, str(script), str(directory), str(nb201_csv)])
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.2)
        try:
            done = Study.load(directory)
        except StudyError:  # not created yet, or its configuration not yet written
            continue
        n = done.n_finished
        done.close()
        if n >= 15:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = Study.load(directory)
    completed_before = {t.number: t for t in killed.trials if t.status != "running"}
    assert len(completed_before) >= 15
    killed.optimize()
    after = {t.number: t for t in killed.trials}
    assert killed.n_finished == 60 and len(after) == 60
    for number, trial in completed_before.items():  # nothing completed was repeated or changed
        assert after[number] == trial
    straight = Study.from_config(slow_table.config(nb201_csv, delay=0.0))
    straight.optimize()
    assert [t.arch for t in killed.trials] == [t.arch for t in straight.trials]


def test_a_directory_holding_a_different_study_is_refused_and_left_intact(tmp_path, nb201_csv):
    directory = tmp_path / "s"
    Study.from_config(table_config(nb201_csv, evaluations=5), directory).optimize()
    before = (directory / "study.db").read_bytes()
    with pytest.raises(StudyError, match="holds a different study"):
        Study.from_config(table_config(nb201_csv, strategy="random", evaluations=5), directory)
    assert (directory / "study.db").read_bytes() == before


@pytest.mark.parametrize("evaluations", [0, -3])
def test_budget_must_be_positive(evaluations):
    with pytest.raises(ArchsearchError, match="budget must be > 0"):
        Budget(evaluations)


def test_a_file_that_is_not_a_study_is_refused(tmp_path):
    directory = tmp_path / "junk"
    directory.mkdir()
    (directory / "study.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StudyError):
        Study.load(directory)


def test_trajectory_is_monotone_and_ends_at_the_best(nb201_csv):
    study = Study.from_config(table_config(nb201_csv, evaluations=30))
    study.optimize()
    trajectory = study.trajectory()
    bests = [row["best_objective"] for row in trajectory]
    assert bests == sorted(bests) and bests[-1] == study.best.objective
    assert study.summary()["n_evaluations"] == 30


@pytest.mark.slow
def test_a_running_study_cannot_be_run_by_a_second_process(tmp_path, nb201_csv):
    directory = tmp_path / "busy"
    proc = subprocess.Popen(
        [sys.executable, str(Path(slow_table.__file__)), str(directory), str(nb201_csv)]
    )
    try:
        deadline = time.time() + 30
        while not (directory / "study.lock").exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        second = Study.load(directory)
        with pytest.raises(StudyError, match="being run by another process"):
            second.optimize()
    finally:
        proc.kill()
        proc.wait()
