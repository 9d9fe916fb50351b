"""Parallel evaluation: the asynchronous scheduler, its backends, retries and timeouts."""

import warnings

import numpy as np
import pytest
from worker_helpers import KillsItsWorker, RaisesForSome

from archsearch.errors import ArchsearchError
from archsearch.parallel import Execution, Recipe
from archsearch.parallel.jobs import Job
from archsearch.parallel.process import ProcessBackend
from archsearch.parallel.simulated import SimulatedBackend
from archsearch.space.nb201 import NB201Space
from archsearch.strategy.evolution import RegularizedEvolution
from archsearch.study import Study


def table_config(csv, strategy="evolution", evaluations=30, seed=0):
    return {
        "space": {"name": "nb201"},
        "strategy": {"name": strategy},
        "evaluator": {"name": "nb201-table", "table": str(csv)},
        "seed": seed,
        "budget": {"evaluations": evaluations},
    }


def simulated(study, workers):
    """Virtual workers whose jobs take 1 + (trial number * 7 mod 5) seconds: results come
    back in an order other than the ask order."""
    return SimulatedBackend(
        study.space, study.evaluator, workers, lambda job, outcome: 1 + (job.key * 7) % 5
    )


def events(study):
    """The stored event order: ('ask' | 'tell', trial number) by sequence number."""
    found = [(t.asked_seq, "ask", t.number) for t in study.trials]
    found += [(t.told_seq, "tell", t.number) for t in study.trials if t.told_seq is not None]
    return [(kind, number) for _, kind, number in sorted(found)]


def test_workers_ask_before_earlier_trials_are_told_and_the_budget_is_kept(nb201_csv):
    study = Study.from_config(table_config(nb201_csv, evaluations=30))
    study.optimize(backend=simulated(study, 4))
    trials = study.trials
    assert len(trials) == 30 and all(t.status == "complete" for t in trials)
    order = events(study)
    assert order[:4] == [("ask", 0), ("ask", 1), ("ask", 2), ("ask", 3)]
    told = [n for kind, n in order if kind == "tell"]
    assert told != sorted(told)  # results arrived out of ask order
    assert len({t.arch for t in trials}) == 30


def test_a_resumed_parallel_study_replays_its_event_order_exactly(nb201_csv, tmp_path):
    config = table_config(nb201_csv, strategy="local", evaluations=25)
    study = Study.from_config(config, tmp_path / "s")
    study.optimize(backend=simulated(study, 4))
    live_next = study.strategy.propose()
    stored = events(study)
    study.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a replayed proposal that differs warns
        again = Study.load(tmp_path / "s", run=True)
    assert events(again) == stored
    assert again.strategy.propose() == live_next
    again.close()


def test_one_worker_through_a_worker_process_gives_the_in_process_trajectory(nb201_csv):
    config = table_config(nb201_csv, evaluations=12, seed=3)
    alone = Study.from_config(config)
    alone.optimize()
    through = Study.from_config(config)
    through.optimize(execution=Execution(workers=1, trial_timeout=60))
    assert [t.arch for t in through.trials] == [t.arch for t in alone.trials]
    assert [t.values for t in through.trials] == [t.values for t in alone.trials]
    assert events(through) == events(alone)


def test_worker_processes_evaluate_a_search_and_record_failures(nb201_csv):
    space = NB201Space()
    study = Study(space, RegularizedEvolution(space, seed=1), RaisesForSome())
    study.optimize(12, execution=Execution(workers=3))
    trials = study.trials
    assert len(trials) == 12 and all(t.attempts == 1 for t in trials)
    failed = [t for t in trials if t.status == "failed"]
    assert all(t.arch.startswith("|none") for t in failed)
    assert all("RuntimeError: no such network" in t.error for t in failed)
    assert all(t.status == "complete" for t in trials if not t.arch.startswith("|none"))


def test_a_trial_that_kills_every_worker_is_retried_then_recorded_as_failed():
    space = NB201Space()
    study = Study(space, RegularizedEvolution(space, seed=0), KillsItsWorker())
    study.optimize(2, execution=Execution(workers=2, retries=1))
    for trial in study.trials:
        assert trial.status == "failed" and trial.attempts == 2
        assert "killed by SIGKILL" in trial.error and "in each of 2 attempts" in trial.error


def test_a_trial_past_the_timeout_is_cancelled_and_recorded_as_failed():
    config = {
        "space": {"name": "nb201"},
        "strategy": {"name": "random"},
        "evaluator": {"name": "sleep", "seconds": 60},
        "budget": {"evaluations": 2},
    }
    study = Study.from_config(config)
    study.optimize(execution=Execution(workers=2, trial_timeout=1.5))
    assert [t.status for t in study.trials] == ["failed", "failed"]
    assert all("exceeded the trial timeout of 1.5 s" in t.error for t in study.trials)
    assert all(t.duration < 30 for t in study.trials)


def test_a_simulated_timeout_fails_the_trial_without_a_retry(nb201_csv):
    study = Study.from_config(table_config(nb201_csv, evaluations=6))
    backend = SimulatedBackend(
        study.space, study.evaluator, 2, lambda job, _: 10 if job.key == 2 else 1, trial_timeout=5
    )
    study.optimize(backend=backend)
    by_number = {t.number: t for t in study.trials}
    assert by_number[2].status == "failed" and by_number[2].attempts == 1
    assert sum(t.status == "complete" for t in study.trials) == 5


def test_a_configuration_error_in_a_worker_stops_the_study(tmp_path):
    config = {
        "space": {"name": "nb201"},
        "strategy": {"name": "random"},
        "evaluator": {"name": "nb201-table", "table": str(tmp_path / "missing.csv")},
        "budget": {"evaluations": 2},
    }
    recipe = Recipe(space=config["space"], evaluator=config["evaluator"])
    space = NB201Space()
    arch = space.sample(np.random.default_rng(0))
    backend = ProcessBackend(recipe, 1)
    try:
        backend.submit(Job(0, space.to_json(arch), seed=0))
        (outcome,) = backend.wait()
    finally:
        backend.shutdown()
    assert outcome.status == "fatal" and "missing.csv" in outcome.error


def test_components_travel_as_configuration_when_registered_else_pickled(nb201_csv):
    study = Study.from_config(table_config(nb201_csv))
    recipe = Recipe.of(study.space, study.evaluator, study.config)
    assert recipe.pickled is None and recipe.evaluator["name"] == "nb201-table"
    space = NB201Space()
    custom = Study(space, RegularizedEvolution(space), RaisesForSome())
    recipe = Recipe.of(custom.space, custom.evaluator, custom.config)
    assert recipe.pickled is not None
    rebuilt_space, rebuilt = recipe.build()
    assert isinstance(rebuilt, RaisesForSome) and rebuilt_space.config() == space.config()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"workers": 0}, "--workers must be an integer >= 1"),
        ({"trial_timeout": 0}, "--trial-timeout must be a number of seconds > 0"),
        ({"retries": -1}, "--retries must be an integer >= 0"),
        ({"on_interrupt": "later"}, "--on-interrupt must be one of cancel, wait"),
        ({"ray": ""}, "--ray takes 'auto' or a cluster address"),
    ],
)
def test_bad_execution_settings_are_refused_with_one_message(settings, message):
    with pytest.raises(ArchsearchError, match=message):
        Execution(**settings)


def test_the_ray_backend_without_ray_says_how_to_install_it(monkeypatch):
    import sys

    from archsearch.parallel.ray_cluster import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ArchsearchError, match=r"pip install 'archsearch\[ray\]'"):
        import_ray()


def test_resume_keeps_the_stored_execution_unless_a_flag_changes_it():
    stored = Execution(workers=4, retries=5).to_dict()
    assert Execution.from_dict(stored) == Execution(workers=4, retries=5)
    assert Execution.from_dict(stored, workers=2, retries=None) == Execution(workers=2, retries=5)
    assert Execution.from_dict(None) == Execution()


def test_show_trials_lists_every_trial_with_its_attempts(nb201_csv, tmp_path, capsys):
    from archsearch.cli.main import main

    study = Study.from_config(table_config(nb201_csv, evaluations=5), tmp_path / "s")
    study.optimize(backend=simulated(study, 2))
    study.storage.update_trial(3, attempts=2)
    study.close()
    assert main(["show", str(tmp_path / "s"), "--trials"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index("trials:") + 1 :]
    assert table[0].split()[:3] == ["trial", "status", "attempts"]
    assert [line.split()[:3] for line in table[1:]] == [
        [str(n), "complete", "2" if n == 3 else "1"] for n in range(5)
    ]


def test_an_architecture_the_study_holds_is_pending_until_told():
    space = NB201Space()
    strategy = RegularizedEvolution(space, seed=0)
    chosen = space.sample(np.random.default_rng(5))
    strategy.hold(chosen)
    assert strategy.pending == [chosen] and chosen in strategy.seen
    proposed = strategy.ask()
    assert strategy.pending == [chosen, proposed]
    strategy.tell(chosen, 0.5)
    assert strategy.pending == [proposed]
