"""A search on a real local Ray instance, one of whose workers is killed during a trial.

Ray is a development dependency, so CI runs this (it starts Ray itself with two CPUs)."""

import os
import signal
import threading
import time

import pytest
import ray

from archsearch.parallel import Execution
from archsearch.study import Study

pytestmark = pytest.mark.slow


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def kill_first_worker(log, killed):
    """Kill -9 the Ray worker process that logs the first evaluation, while it sleeps."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().strip():
            pid = int(log.read_text().split()[0])
            time.sleep(0.3)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


def test_a_ray_search_retries_the_trial_of_a_killed_worker(local_ray, tmp_path):
    log = tmp_path / "log"
    config = {
        "space": {"name": "nb201"},
        "strategy": {"name": "evolution"},
        "evaluator": {"name": "sleep", "seconds": 2.0, "log": str(log)},
        "seed": 0,
        "budget": {"evaluations": 4},
    }
    study = Study.from_config(config, tmp_path / "study")
    killed: list[int] = []
    killer = threading.Thread(target=kill_first_worker, args=(log, killed))
    killer.start()
    study.optimize(execution=Execution(workers=2, ray="auto"))
    killer.join()
    assert killed
    trials = study.trials
    assert [t.status for t in trials] == ["complete"] * 4
    retried = [t for t in trials if t.attempts == 2]
    assert len(retried) == 1 and all(t.attempts == 1 for t in trials if t not in retried)
    lines = log.read_text().splitlines()
    first_arch = lines[0].split()[2]
    assert first_arch == retried[0].arch  # the killed worker's trial ran again
    assert [line.split()[2] for line in lines].count(first_arch) == 2
    assert int(lines[0].split()[0]) == killed[0]
    study.close()
