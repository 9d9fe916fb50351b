import numpy as np
import pytest

from archsearch.diagnostics import (
    kendall_tau,
    noise_ceiling,
    precision_at_top,
    ranking_report,
    spearman_rho,
    true_ranks_of_top,
)


def test_perfect_and_reversed_rankings_give_plus_and_minus_one():
    truth = np.arange(50.0)
    assert kendall_tau(truth * 2, truth) == pytest.approx(1.0)
    assert spearman_rho(-truth, truth) == pytest.approx(-1.0)


def test_precision_at_top_counts_the_overlap_of_top_sets():
    truth = np.arange(100.0)
    estimate = truth.copy()
    estimate[99], estimate[0] = estimate[0], estimate[99]  # the true best is ranked last
    assert precision_at_top(estimate, truth, 0.05) == pytest.approx(4 / 5)


def test_true_ranks_of_the_estimators_favourites():
    truth = np.array([10.0, 9.0, 8.0, 7.0])
    estimate = np.array([0.0, 3.0, 2.0, 1.0])  # favourites: index 1 (rank 2), index 2 (rank 3)
    assert true_ranks_of_top(estimate, truth, 2) == (2, 3)


def test_report_ignores_non_finite_scores():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    estimate = truth + 0.1 * rng.normal(size=200)
    estimate[:5] = np.nan
    report = ranking_report(estimate, truth)
    assert report["spearman"] > 0.9 and 0.0 <= report["precision_top5"] <= 1.0


def test_noise_ceiling_matches_hand_values_and_a_simulated_noisy_table():
    # tau 0.5: rho = sin(pi/4) = 0.7071; one run: (2/pi) asin(0.8409) = 0.6359; the mean of
    # two: R = 1.4142 / 1.7071 = 0.8284, (2/pi) asin(0.9102) = 0.7281
    assert noise_ceiling(0.5) == pytest.approx(0.6359, abs=1e-4)
    assert noise_ceiling(0.5, runs_averaged=2) == pytest.approx(0.7281, abs=1e-4)
    assert noise_ceiling(1.0) == pytest.approx(1.0)
    assert noise_ceiling(-0.2) == 0.0
    with pytest.raises(ValueError, match="runs_averaged"):
        noise_ceiling(0.5, runs_averaged=0)
    for bad in (1.5, float("nan")):
        with pytest.raises(ValueError, match=r"\[-1, 1\]"):
            noise_ceiling(bad)
    # a table of true accuracies plus seed noise: the formula predicts what the truth itself
    # (the perfect estimator) reaches against one run and against the mean of two runs
    rng = np.random.default_rng(0)
    true = rng.normal(size=20000)
    run1, run2, run3 = (true + 0.7 * rng.normal(size=true.size) for _ in range(3))
    between = kendall_tau(run1, run2)
    assert kendall_tau(true, run3) == pytest.approx(noise_ceiling(between), abs=0.01)
    mean_of_two = (run2 + run3) / 2
    assert kendall_tau(true, mean_of_two) == pytest.approx(noise_ceiling(between, 2), abs=0.01)
