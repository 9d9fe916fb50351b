"""Replicate agreement, seed noise and table ranks (moved from the benchmark scripts into
archsearch.diagnostics)."""

import numpy as np
import pytest

from archsearch.diagnostics import (
    kendall_shared,
    kendall_tau,
    noise_ceiling,
    rank_in_table,
    replicate_agreement,
    replicate_mean,
    seed_noise,
)


def replicates(seed: int, runs: int = 3, cells: int = 400, noise: float = 1.0):
    """Runs of one table: noise-free accuracy plus independent Gaussian noise per run."""
    rng = np.random.default_rng(seed)
    true = rng.normal(size=cells)
    names = [f"c{i}" for i in range(cells)]
    columns = {
        f"run{r}": dict(zip(names, true + noise * rng.normal(size=cells), strict=True))
        for r in range(runs)
    }
    return dict(zip(names, true, strict=True)), columns


def test_the_ceiling_from_replicates_predicts_a_perfect_estimators_tau():
    """Against one run, the noise-free accuracy (the best estimator there is) reaches about
    the ceiling that the runs' agreement gives, and the mean of runs is a better truth."""
    true, columns = replicates(seed=0)
    report = replicate_agreement(columns, ["run0", "run1", "run2"])
    assert report["cells"] == 400
    reached = np.mean([kendall_shared(true, columns[r])[0] for r in columns])
    assert report["ceiling_one_run"] == pytest.approx(reached, abs=0.04)
    mean = replicate_mean(columns, ["run0", "run1", "run2"])
    assert kendall_shared(true, mean)[0] == pytest.approx(report["ceiling_mean"], abs=0.04)
    assert report["ceiling_mean"] > report["ceiling_one_run"] > report["kendall_between_runs"]
    with pytest.raises(ValueError, match="two or more"):
        replicate_agreement(columns, ["run0", "run0"])


def test_tables_compare_on_the_cells_they_share():
    a = {"x": 1.0, "y": 2.0, "z": 3.0, "only_a": 0.0}
    b = {"x": 1.0, "y": 3.0, "z": 2.0, "only_b": 9.0}
    tau, n = kendall_shared(a, b)
    assert n == 3 and tau == pytest.approx(kendall_tau([1, 2, 3], [1, 3, 2]))
    assert replicate_mean({"a": a, "b": b}, ["a", "b"]) == {"x": 1.0, "y": 2.5, "z": 2.5}


def test_seed_noise_reports_agreement_ceiling_and_accuracy_noise():
    rng = np.random.default_rng(1)
    first = rng.normal(75, 2, size=300)
    second = first + rng.normal(0, 0.5, size=300)
    report = seed_noise(first, second)
    assert report["rows"] == 300
    assert report["kendall_between_seeds"] == round(kendall_tau(first, second), 3)
    assert report["kendall_ceiling_noise_free"] == round(
        noise_ceiling(kendall_tau(first, second)), 3
    )
    assert report["difference_std"] == pytest.approx(0.5, abs=0.06)
    assert report["table_valid_std"] == pytest.approx(2.0, abs=0.25)
    with pytest.raises(ValueError):
        seed_noise([1.0], [1.0])


def test_rank_in_table_counts_strictly_better_rows():
    values = [90.0, 80.0, 80.0, 70.0]
    assert rank_in_table(values, 95.0) == {"rows_better": 0, "top_percent": 25.0}
    assert rank_in_table(values, 80.0) == {"rows_better": 1, "top_percent": 50.0}
    assert rank_in_table(values, 10.0) == {"rows_better": 4, "top_percent": 125.0}
