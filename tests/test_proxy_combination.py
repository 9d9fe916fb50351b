"""The shrunk proxy fit and the held-out comparison of combinations (moved from
benchmarks/proxies_fmnist.py into archsearch.proxies.combine)."""

import numpy as np
import pytest
from scipy import stats

from archsearch.errors import ArchsearchError
from archsearch.proxies import fit_proxy_weights, rank_average
from archsearch.proxies.combine import held_out_comparison, standardised_ranks


def known_weights(seed: int, n: int = 500, evaluated: int = 200):
    """Truth = 3 a + 1 b in rank space, exactly: the proxies are a, b and noise."""
    rng = np.random.default_rng(seed)
    scores = {name: rng.normal(size=n) for name in ("a", "b", "noise")}
    z = standardised_ranks(scores, list(scores))
    truth = z @ np.array([3.0, 1.0, 0.0])
    known = np.full(n, np.nan)
    known[:evaluated] = truth[:evaluated]
    return scores, truth, known


def test_the_shrunk_fit_recovers_known_weights_when_the_data_say_much():
    scores, truth, known = known_weights(seed=0)
    fit = fit_proxy_weights(scores, known, method="shrunk")
    w = fit.as_dict()
    expected = np.array([3.0, 1.0, 0.0]) / np.linalg.norm([3.0, 1.0, 0.0])
    assert np.allclose(fit.weights, expected, atol=0.05), w
    assert fit.fit_spearman > 0.99
    held = slice(200, None)
    assert stats.spearmanr(fit.combine(scores)[held], truth[held]).statistic > 0.99


def test_the_shrunk_fit_stays_near_the_rank_average_when_the_data_say_little():
    """Six proxies, truth their rank average plus noise, only eight evaluated: the fit keeps
    to its prior (the rank average) instead of learning the noise of the eight."""
    rng = np.random.default_rng(1)
    scores = {name: rng.normal(size=300) for name in "abcdef"}
    average = rank_average(scores)
    known = np.full(300, np.nan)
    known[:8] = average[:8] + 0.05 * rng.normal(size=8)
    fit = fit_proxy_weights(scores, known, method="shrunk")
    assert stats.spearmanr(fit.combine(scores), average).statistic > 0.9
    assert min(fit.weights) > 0


def test_the_held_out_comparison_scores_only_unseen_architectures():
    """A proxy that equals validation accuracy exactly on the fitted rows but is noise
    elsewhere looks perfect in sample; held out it is worth nothing, and the comparison
    shows that, while a genuinely good proxy keeps its rho."""
    rng = np.random.default_rng(2)
    n = 200
    valid = rng.normal(size=n)
    test = valid + 0.1 * rng.normal(size=n)
    scores = {"good": valid + 0.3 * rng.normal(size=n), "noise": rng.normal(size=n)}
    results, chosen = held_out_comparison(scores, valid, test, ["good", "noise"], 30, 4, seed=0)
    assert set(results) >= {
        "fitted, shrunk to avg",
        "fitted (registry)",
        "fitted, non-negative",
        "rank average (all)",
        "best single on fit set",
        "good",
        "noise",
    }
    assert all(len(r) == 4 for r in results.values())
    assert np.mean(results["good"]) > 0.9 and abs(np.mean(results["noise"])) < 0.2
    assert chosen == {"good": 4}
    assert np.mean(results["fitted, non-negative"]) > 0.9
    with pytest.raises(ArchsearchError, match="fit_size"):
        held_out_comparison(scores, valid, test, ["good"], 2, 1)
