"""benchmarks/asynchrony.py: one simulated worker is the sequential study, four really run
asynchronously, the duration model is deterministic, and a tiny run's figures and files."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import asynchrony  # noqa: E402

SEEDS, QUERIES = (0, 1), 20


def events(study) -> list[tuple]:
    return [(t.number, t.arch, t.seed, t.asked_seq, t.told_seq) for t in study.storage.trials()]


@pytest.mark.parametrize("seed", SEEDS)
def test_one_simulated_worker_is_the_plain_sequential_study(seed, nb201_csv):
    from archsearch.study import Study

    simulated, clock = asynchrony.simulate(str(nb201_csv), "evolution", 1, seed, QUERIES)
    plain = Study.from_config(asynchrony.study_config(str(nb201_csv), "evolution", seed, QUERIES))
    plain.optimize()
    assert simulated.trajectory() == plain.trajectory()
    assert events(simulated) == events(plain)  # same cells, seeds and ask/tell order
    assert len(clock) == QUERIES and clock == sorted(clock)


@pytest.mark.parametrize("seed", SEEDS)
def test_four_simulated_workers_ask_before_earlier_trials_are_told(seed, nb201_csv):
    study, clock = asynchrony.simulate(str(nb201_csv), "evolution", 4, seed, QUERIES)
    trials = study.storage.trials()
    assert len(trials) == QUERIES and all(t.status == "complete" for t in trials)
    # a later trial was asked while an earlier one was still outstanding
    assert any(b.asked_seq < a.told_seq for a in trials for b in trials if b.number > a.number)
    # and results come back out of submission order (durations differ per cell)
    told = [t.number for t in sorted(trials, key=lambda t: t.told_seq)]
    assert told != sorted(told)
    # never more than four outstanding, and four at some point
    seq = sorted([(t.asked_seq, 1) for t in trials] + [(t.told_seq, -1) for t in trials])
    outstanding = np.cumsum([step for _, step in seq])
    assert outstanding.max() == 4
    # the trajectory is in finish order: the best-so-far test accuracy of told trials
    assert [row["trial"] for row in study.trajectory()] == told
    assert len(clock) == QUERIES and clock == sorted(clock)


def test_the_duration_model_depends_on_the_cell_and_the_trials_seed_only():
    from archsearch.parallel.jobs import Job
    from archsearch.space.nb201 import NB201Space
    from archsearch.tables.nb201 import nb201_costs

    space = NB201Space()
    duration = asynchrony.FlopsDuration(space)
    flops = nb201_costs("cifar10")["flops"]
    small, large = (
        space.to_json(space.from_index(int(i))) for i in (flops.argmin(), flops.argmax())
    )
    assert duration(Job(0, small, seed=7)) == duration(Job(5, small, seed=7))
    assert duration(Job(0, small, seed=7)) != duration(Job(0, small, seed=8))
    noise = np.random.default_rng(7).lognormal(-(0.2**2) / 2, 0.2)
    assert duration(Job(0, large, seed=7)) == pytest.approx(asynchrony.T0 * noise)
    assert duration(Job(0, small, seed=7)) == pytest.approx(
        asynchrony.T0 * (0.25 + 0.75 * flops.min() / flops.max()) * noise
    )


def test_a_tiny_run_reports_the_paired_loss_and_resumes_from_its_cache(nb201_csv, tmp_path, capsys):
    cache, stem = tmp_path / "runs.jsonl", tmp_path / "out" / "asynchrony"
    argv = [
        "--strategies", "evolution", "--seeds", str(len(SEEDS)), "--queries", f"10,{QUERIES}",
        "--workers", "4", "--table", str(nb201_csv), "--cache", str(cache), "--out", str(stem),
    ]  # fmt: skip
    figures = asynchrony.main(argv)
    printed = capsys.readouterr().out
    assert "4 runs to do, 0 from the cache" in printed and "not measured" in printed
    assert json.loads(stem.with_suffix(".json").read_text()) == json.loads(json.dumps(figures))
    assert stem.with_suffix(".txt").read_text() == printed
    assert set(figures) == {"evolution"} and set(figures["evolution"]) == {10, QUERIES}
    rows = {(r["workers"], r["seed"]): r for r in map(json.loads, cache.read_text().splitlines())}
    for q in (10, QUERIES):
        assert set(figures["evolution"][q]) == {1, 4}  # 1 worker is always run: the baseline
        one, four = figures["evolution"][q][1], figures["evolution"][q][4]
        assert one["loss_vs_sequential_pp"] == 0 and one["loss_se"] == 0
        sequential = [rows[1, s]["curve"][q - 1] for s in SEEDS]
        parallel = [rows[4, s]["curve"][q - 1] for s in SEEDS]
        assert four["mean"] == pytest.approx(np.mean(parallel))
        assert four["loss_vs_sequential_pp"] == pytest.approx(
            np.mean(sequential) - np.mean(parallel)
        )
        assert four["se"] == pytest.approx(np.std(parallel, ddof=1) / np.sqrt(len(SEEDS)))
    assert asynchrony.main(argv) == figures  # resumed: nothing rerun, the same figures
    assert "0 runs to do, 4 from the cache" in capsys.readouterr().out
