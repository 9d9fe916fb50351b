"""Faults of a parallel search run from the command line: kill -9 of the study process,
SIGTERM with running trials cancelled or awaited, and ``show --trials`` while it runs.

The evaluator is the synthetic ``sleep`` load, whose log names the worker process that
evaluates each trial."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

ARCHSEARCH = [sys.executable, "-m", "archsearch"]


def start_search(out, log, *, workers=2, seconds=1.0, budget=8, extra=()):
    command = [
        *ARCHSEARCH, "search", "--evaluator", "sleep", "--evaluator-opt", f"seconds={seconds}",
        "--evaluator-opt", f"log={log}", "--strategy", "random", "--budget", str(budget),
        "--workers", str(workers), "--out", str(out), "--quiet", *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def trials(out):
    shown = subprocess.run(
        [*ARCHSEARCH, "show", str(out), "--json", "--trials"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["trials"]


def count(rows, status):
    return sum(row["status"] == status for row in rows)


def logged(log):
    """(pid, architecture) of every evaluation started, in order."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [(int(line.split()[0]), line.split()[2]) for line in lines]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def resume(out):
    done = subprocess.run(
        [*ARCHSEARCH, "resume", str(out), "--quiet"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return trials(out)


def test_kill_9_of_a_parallel_search_loses_nothing_and_runs_nothing_finished_again(tmp_path):
    out, log = tmp_path / "study", tmp_path / "log"
    search = start_search(out, log, workers=2, seconds=3.0, budget=16)
    deadline = time.monotonic() + 60
    while len(logged(log)) < 4 and time.monotonic() < deadline:  # two trials finished
        time.sleep(0.05)
    seen = trials(out)  # readable while the study runs, the trials in flight included
    assert count(seen, "running") and count(seen, "complete") >= 2
    search.kill()
    search.wait()
    assert len(logged(log)) < 16, "the search ended before it was killed: a slower machine?"
    finished = {r["number"]: r for r in trials(out) if r["status"] == "complete"}
    assert len(finished) >= count(seen, "complete")
    interrupted = [r["number"] for r in trials(out) if r["status"] == "running"]
    assert interrupted
    workers = {pid for pid, _ in logged(log)}
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), "workers outlived their killed study"

    after = resume(out)
    assert count(after, "complete") == 16 and not count(after, "running")
    rows = {r["number"]: r for r in after}
    for number, row in finished.items():  # kept as they were, never evaluated again
        assert rows[number]["values"] == row["values"]
        assert rows[number]["finished"] == row["finished"]
    evaluations = [arch for _, arch in logged(log)]
    assert all(evaluations.count(row["arch"]) == 1 for row in finished.values())
    for number in interrupted:  # started again by the resume
        assert rows[number]["attempts"] == 2
        assert evaluations.count(rows[number]["arch"]) == 2


@pytest.mark.parametrize("mode", ["cancel", "wait"])
def test_sigterm_cancels_or_awaits_the_running_trials_and_leaves_the_study_resumable(
    tmp_path, mode
):
    out, log = tmp_path / "study", tmp_path / "log"
    search = start_search(
        out, log, workers=2, seconds=4.0, budget=4, extra=("--on-interrupt", mode)
    )
    deadline = time.monotonic() + 60
    while len(logged(log)) < 2 and time.monotonic() < deadline:  # both workers evaluating
        time.sleep(0.05)
    time.sleep(0.5)
    search.send_signal(signal.SIGTERM)
    _, stderr = search.communicate(timeout=60)
    assert search.returncode == 128 + signal.SIGTERM
    assert "'archsearch resume DIR' continues the study" in stderr
    rows = trials(out)
    if mode == "wait":
        assert "waiting for the 2 running trials" in stderr
        assert count(rows, "complete") == 2 and not count(rows, "running")
    else:
        assert count(rows, "running") == 2 and not count(rows, "complete")
    assert not any(alive(pid) for pid, _ in logged(log))
    after = resume(out)
    assert count(after, "complete") == 4
    expected = 1 if mode == "wait" else 2  # a cancelled trial is started again
    assert sorted(r["attempts"] for r in after)[-2:] == [expected, expected]


def test_bad_parallel_settings_are_one_error_line_and_write_nothing(tmp_path):
    for flags, message in [
        (["--workers", "0"], "argument --workers: must be >= 1"),
        (["--trial-timeout", "0"], "--trial-timeout must be a number of seconds > 0"),
        (["--retries", "-1"], "--retries must be an integer >= 0"),
    ]:
        done = subprocess.run(
            [*ARCHSEARCH, "search", "--evaluator", "sleep", "--budget", "2", "--out",
             str(tmp_path / "s"), *flags],
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [f"archsearch: error: {message}"] or (
            message in done.stderr and len(done.stderr.strip().splitlines()) == 1
        )
        assert not (tmp_path / "s").exists()
