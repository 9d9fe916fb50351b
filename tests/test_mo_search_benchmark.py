"""benchmarks/mo_search.py: the normalised hypervolume, the constrained protocol, and a tiny
run's JSON."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mo_search  # noqa: E402


def test_normalised_hypervolume_is_0_at_the_median_and_1_at_the_ideal_point():
    rng = np.random.default_rng(0)
    accuracy, cost = rng.normal(90, 3, 1001), rng.lognormal(0, 1, 1001)
    scale = mo_search.Scale.of(accuracy, cost)
    median, best = (np.median(accuracy), np.median(cost)), (accuracy.max(), cost.min())
    assert mo_search.normalised_hypervolume(*median, scale) == 0.0
    assert mo_search.normalised_hypervolume(*best, scale) == pytest.approx(1.0)
    assert mo_search.normalised_hypervolume(accuracy, cost, scale) < 1.0
    # half-way on both objectives covers a quarter of the unit square
    halfway = (median[0] + best[0]) / 2, (median[1] + best[1]) / 2
    assert mo_search.normalised_hypervolume(*halfway, scale) == pytest.approx(0.25)
    assert np.allclose(scale(*best), [[1.0, 1.0]]) and np.allclose(scale(*median), [[0.0, 0.0]])


def test_the_sweep_front_is_pareto_mask():
    from archsearch.strategy.pareto import pareto_mask

    rng = np.random.default_rng(1)
    for _ in range(50):
        accuracy, cost = rng.integers(0, 5, (2, 30)).astype(float)  # ties and duplicates
        mask = pareto_mask(np.column_stack([accuracy, -cost]))
        assert list(mo_search.front_rows(accuracy, cost)) == list(np.flatnonzero(mask))


def fake_problem() -> "mo_search.Problem":
    """625 cells with random accuracies and costs."""
    from archsearch.space.base import Decision, SearchSpace

    space = SearchSpace([Decision(f"d{i}", tuple(range(5))) for i in range(4)])
    rng = np.random.default_rng(2)
    index = {arch: i for i, arch in enumerate(space.enumerate())}
    return mo_search.Problem(
        name="fake/set/params",
        space=space,
        valid=rng.normal(80, 5, len(index)),
        test=rng.normal(80, 5, len(index)),
        cost=rng.lognormal(0, 1, len(index)),
        row_of=index.__getitem__,
        cost_source="random numbers",
    )


def test_a_constrained_archsearch_run_never_evaluates_an_infeasible_cell():
    problem = fake_problem()
    bound = float(np.quantile(problem.cost, 0.3))
    for strategy in ("random", "evolution", "local"):
        run = mo_search.constrained_search(problem, strategy, 0, 60, bound)
        assert len(run["rows"]) == 60 and run["infeasible_evaluations"] == 0
        assert all(problem.cost[r] <= bound for r in run["rows"]) and run["refused"] > 0
        best = max(run["rows"], key=lambda r: problem.valid[r])
        assert run["curve"][-1] == problem.test[best]
    tpe = mo_search.constrained_search(problem, "optuna-tpe", 0, 30, bound)
    assert len(tpe["rows"]) == 30 and tpe["refused"] == 0  # TPE's infeasible trials are queries


def test_a_tiny_run_prints_json_of_every_sampler_and_budget(tmp_path, capsys):
    out = tmp_path / "mo.json"
    report = mo_search.main([
        "--problems", "nbg/cora/latency", "--seeds", "1", "--budget", "10,20",
        "--sections", "mo", "--workers", "1", "--json", str(out),
    ])  # fmt: skip
    data = json.loads(out.read_text())
    assert data["protocol"]["budgets"] == [10, 20] and data["protocol"]["reference_point"] == [0, 0]
    problem = data["problems"]["nbg/cora/latency"]
    assert set(problem["normalisation"]) == {"valid", "test"}
    assert all(0 < hv <= 1 for hv in problem["table_front_hv"].values())
    samplers = set(problem["results"])
    assert {"random", "optuna-nsga2", "optuna-motpe"} <= samplers
    assert samplers == set(report["protocol"]["samplers"])
    for entry in problem["results"].values():
        for budget in ("10", "20"):
            for key in ("valid_hv", "test_hv"):
                stats = entry[budget][key]
                assert stats["n"] == 1 and 0 <= stats["mean"] <= 1 and stats["se"] is None
        assert entry["10"]["valid_hv"]["mean"] <= entry["20"]["valid_hv"]["mean"]
        assert entry["seconds_per_run"] > 0
    assert data["targets"] == []  # neither 100 nor 200 queries: nothing to check
    assert "targets" in capsys.readouterr().out


def test_the_measured_latency_problems_are_the_packaged_cifar10_figures():
    from archsearch.tables.nb201 import nb201_hardware

    table = str(mo_search.DEFAULT_TABLE)
    problem = mo_search.load_problem("nb201/cifar10/onnx_latency_ms", table, None)
    assert np.array_equal(problem.cost, nb201_hardware()["onnx_latency_ms"])
    assert "nb201/cifar10/latency_ms" in mo_search.DEFAULT_PROBLEMS
    with pytest.raises(SystemExit, match="cifar10 network's, not cifar100's"):
        mo_search.load_problem("nb201/cifar100/latency_ms", table, None)
