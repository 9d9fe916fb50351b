"""Zero-cost proxies: hand-computed values on tiny networks, the contract (higher is better,
no side effects, seeded), combinations, and Zen-score against the shared reference column."""

import csv
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from archsearch.errors import ArchsearchError, UnknownComponentError
from archsearch.proxies import (
    PROXIES,
    compute_proxies,
    compute_proxy,
    diagnose_estimators,
    fit_proxy_weights,
    normalised_ranks,
    rank_average,
    register_proxy,
    resolve_proxy_names,
)
from archsearch.proxies.report import orderable
from archsearch.proxies.runner import random_batch, score_architectures, thin_space
from archsearch.space import NB201Space

ALL = [
    "fisher",
    "flops",
    "grad_norm",
    "grasp",
    "jacob_cov",
    "l2_norm",
    "linear_regions",
    "naswot",
    "ntk",
    "params",
    "snip",
    "synflow",
    "zen",
    "zico",
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared, oversubscribed machine OpenMP's spin-waits make two
    threads many times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def two_layer(w1, w2, bias=False):
    model = nn.Sequential(nn.Linear(len(w1[0]), len(w1), bias=bias), nn.Linear(len(w2[0]), 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(w1, dtype=torch.float32))
        model[1].weight.copy_(torch.tensor(w2, dtype=torch.float32))
        model[1].bias.zero_()
    return model


def linear(weight):
    model = nn.Linear(len(weight[0]), len(weight), bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(weight, dtype=torch.float32))
    return model


def tiny_nb201(arch_index=1, seed=0):
    space = NB201Space(channels=4, cells_per_stage=1)
    torch.manual_seed(seed)
    return space.build(space.from_index(arch_index), (3, 16, 16), 10)


# ----------------------------------------------------------------- registry
def test_every_proxy_of_the_issue_is_registered():
    assert set(ALL) <= set(PROXIES.names())
    assert resolve_proxy_names("all") == PROXIES.names()


def test_unknown_proxy_fails_listing_the_known_ones():
    with pytest.raises(UnknownComponentError) as err:
        resolve_proxy_names("snip,nosuchproxy")
    for name in ALL:
        assert name in str(err.value)


def test_a_new_proxy_is_one_function_and_one_decorator():
    @register_proxy("test_output_mean", uses_data=True)
    def output_mean(model, inputs, targets, loss_fn):
        """Mean output (a test proxy)."""
        return float(model(inputs).mean().detach())

    try:
        model = linear([[2.0, 0.0]])
        assert compute_proxy("test_output_mean", model, torch.ones(3, 2)) == 2.0
        assert PROXIES.get("test_output_mean").summary == "Mean output (a test proxy)."
    finally:
        PROXIES._entries.pop("test_output_mean")  # keep "all" as the built-in set


def test_label_proxies_refuse_to_run_without_targets():
    with pytest.raises(ArchsearchError, match="needs targets"):
        compute_proxy("snip", linear([[1.0]]), torch.ones(2, 1))


# ----------------------------------------------------------------- hand-computed values
def test_params_counts_weights_and_biases():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert compute_proxy("params", model, torch.zeros(1, 3)) == 3 * 4 + 4 + 4 * 2 + 2


def test_flops_counts_two_per_multiply_accumulate_of_one_input():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert compute_proxy("flops", model, torch.zeros(8, 3)) == 2 * (3 * 4 + 4 * 2)


def test_l2_norm_sums_the_frobenius_norms_of_layer_weights():
    model = two_layer([[1.0, 1.0, 1.0]] * 4, [[2.0] * 4])
    expected = math.sqrt(12) + math.sqrt(16)
    assert compute_proxy("l2_norm", model, torch.zeros(1, 3)) == pytest.approx(expected)


def test_grad_norm_and_snip_of_a_linear_model_with_cross_entropy():
    # W = 0: softmax is uniform, so dL/dW = (1/k - onehot(y))^T x / n
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0]])
    y = torch.tensor([0, 2, 1])
    p = np.full((3, 3), 1 / 3) - np.eye(3)[y.numpy()]
    grad = p.T @ x.numpy() / 3
    model = linear([[0.0, 0.0]] * 3)
    assert compute_proxy("grad_norm", model, x, y) == pytest.approx(np.linalg.norm(grad), 1e-5)
    # snip with W = 1 everywhere: the logits are equal per sample, softmax again uniform
    model = linear([[1.0, 1.0]] * 3)
    assert compute_proxy("snip", model, x, y) == pytest.approx(np.abs(grad).sum(), 1e-5)


def test_fisher_of_a_linear_layer_is_half_the_mean_squared_activation_times_gradient():
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    y = torch.tensor([1, 0])
    w = np.array([[0.5, -1.0], [1.0, 0.25]])
    a = x.numpy() @ w.T
    p = np.exp(a) / np.exp(a).sum(1, keepdims=True)
    g = (p - np.eye(2)[y.numpy()]) / 2
    expected = 0.5 * ((a * g) ** 2).mean(0).sum()
    assert compute_proxy("fisher", linear(w.tolist()), x, y) == pytest.approx(expected, 1e-5)


def test_grasp_is_minus_weights_times_hessian_gradient_product():
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]])
    y = torch.tensor([1, 0, 1])
    w0 = torch.tensor([[0.5, -1.0], [1.0, 0.25]])

    def loss(w):
        return nn.functional.cross_entropy(x @ w.reshape(2, 2).T, y)

    flat = w0.reshape(-1)
    g = torch.autograd.functional.jacobian(loss, flat)
    h = torch.autograd.functional.hessian(loss, flat)
    expected = float(-(flat * (h @ g)).sum())
    assert compute_proxy("grasp", linear(w0.tolist()), x, y) == pytest.approx(expected, 1e-4)


def test_synflow_of_a_two_layer_linear_net_is_twice_its_positive_output():
    # bias-free and homogeneous in each layer, so sum_theta theta dR/dtheta = 2 R with
    # R = 1^T |W2| |W1| 1 = |2, -1, 0.5| . (3, 3.5, 2) = 10.5
    model = nn.Sequential(nn.Linear(2, 3, bias=False), nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5], [-1.0, 1.0]]))
        model[1].weight.copy_(torch.tensor([[2.0, -1.0, 0.5]]))
    assert compute_proxy("synflow", model, torch.randn(4, 2)) == pytest.approx(math.log(21.0))


def test_naswot_is_the_log_determinant_of_the_hamming_kernel():
    # codes 110, 100, 000: K = N_A - Hamming = [[3, 2, 1], [2, 3, 2], [1, 2, 3]], det 8
    x = torch.tensor([[1.0, 1.0, -1.0], [1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]])
    assert compute_proxy("naswot", nn.Sequential(nn.ReLU()), x) == pytest.approx(math.log(8))


def test_naswot_cannot_score_a_network_without_relu():
    assert math.isnan(compute_proxy("naswot", linear([[1.0, 2.0]]), torch.randn(4, 2)))


def test_jacob_cov_of_a_linear_map_sees_identical_jacobians():
    # every input has Jacobian W^T 1: the correlation matrix is all ones, eigenvalues (n, 0..)
    n, k = 5, 1e-5
    model = linear([[1.0, 2.0, -0.5], [0.5, -1.0, 3.0]])
    score = compute_proxy("jacob_cov", model, torch.randn(n, 3))
    eig = np.array([n] + [0.0] * (n - 1))
    assert score == pytest.approx(-(np.log(eig + k) + 1 / (eig + k)).sum(), rel=1e-4)


def test_ntk_of_a_linear_map_is_minus_the_condition_number_of_the_gram_matrix():
    # d(sum_c (W x)_c)/dW = 1 x^T, so Theta = k X X^T; orthogonal x of norms 1 and 2: cond 4
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    model = linear([[0.3, -0.2], [1.0, 0.5], [0.1, 0.1]])
    assert compute_proxy("ntk", model, x) == pytest.approx(-4.0, rel=1e-5)


def test_zico_of_a_linear_model_from_per_sample_gradients():
    # W = 0, two classes: g_i = (1/2 - onehot(y_i)) x_i, i.e. (-0.5, 0.5) and (1, -1);
    # both weights have mean |g| = 0.75 and std 0.75: log(1 + 1)
    x = torch.tensor([[1.0], [2.0]])
    y = torch.tensor([0, 1])
    assert compute_proxy("zico", linear([[0.0], [0.0]]), x, y) == pytest.approx(math.log(2.0))


def test_linear_regions_counts_distinct_activation_patterns():
    # one ReLU unit sees a 3x3 input: two regions (its two signs) among 1000 samples
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU())
    assert compute_proxy("linear_regions", model, torch.zeros(1, 1, 3, 3)) == 2.0


# ----------------------------------------------------------------- the contract
def test_proxies_are_deterministic_given_a_seed_and_leave_the_model_alone():
    model = tiny_nb201()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = random_batch(16, (3, 16, 16), 10, seed=0)
    first = compute_proxies(ALL, model, x, y, seed=3)
    second = compute_proxies(ALL, model, x, y, seed=3)
    assert first == second
    assert all(isinstance(v, float) for v in first.values())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert compute_proxy("zen", model, x, seed=4) != first["zen"]


def test_shared_model_copy_gives_the_scores_of_separate_copies():
    model = tiny_nb201(arch_index=100)
    x, y = random_batch(16, (3, 16, 16), 10, seed=1)
    together = compute_proxies(ALL, model, x, y, seed=0)
    for name in ALL:
        assert compute_proxy(name, model, x, y, seed=0) == pytest.approx(together[name]), name


@pytest.mark.parametrize(
    "names", [ALL, ["params", "flops", "synflow"], ["synflow", "zen"], ["params", "flops"]]
)
def test_an_owned_model_is_scored_like_a_copied_one(names):
    """``owned=True`` skips one deep copy (the benchmark's speed-up) without changing scores
    or their order, whatever mix of mutating and weight-reading proxies is asked for."""
    x, y = random_batch(16, (3, 16, 16), 10, seed=1)
    copied = compute_proxies(names, tiny_nb201(arch_index=100), x, y, seed=0)
    owned = compute_proxies(names, tiny_nb201(arch_index=100), x, y, seed=0, owned=True)
    assert list(owned) == list(copied) == list(names)
    for name in names:
        assert owned[name] == pytest.approx(copied[name]), name


def test_a_cell_that_ignores_its_input_scores_minus_infinity():
    space = NB201Space(channels=4, cells_per_stage=1)
    dead = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"
    )
    model = space.build(dead, (3, 16, 16), 10)
    x = torch.randn(8, 3, 16, 16)
    for name in ("zen", "synflow", "jacob_cov"):
        assert compute_proxy(name, model, x) == -math.inf, name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_proxies_run_on_the_device_of_the_inputs():
    model = tiny_nb201()
    x, y = random_batch(16, (3, 16, 16), 10, seed=0)
    cpu = compute_proxies(ALL, model, x, y)
    cuda = compute_proxies(ALL, model, x.cuda(), y.cuda())
    for name in ("params", "flops", "l2_norm", "synflow"):
        assert cuda[name] == pytest.approx(cpu[name], rel=1e-4)
    assert all(math.isfinite(v) or v == -math.inf for v in cuda.values())


# ----------------------------------------------------------------- combinations, diagnostics
def test_rank_average_averages_normalised_ranks_and_skips_missing_scores():
    scores = {"a": [1.0, 2.0, 3.0], "b": [30.0, 10.0, math.nan]}
    np.testing.assert_allclose(normalised_ranks(scores["b"]), [1.0, 0.5, math.nan])
    np.testing.assert_allclose(rank_average(scores), [(1 / 3 + 1) / 2, (2 / 3 + 0.5) / 2, 1.0])


def two_halves(seed: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """400 architectures whose truth is a + b: two proxies each see one half, one is noise
    and one is anti-correlated; only the first 40 truths are known (the rest are NaN)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=400), rng.normal(size=400)
    truth = a + b
    scores = {
        "half_a": a + 0.1 * rng.normal(size=400),
        "half_b": b + 0.1 * rng.normal(size=400),
        "noise": rng.normal(size=400),
        "anti": -truth + rng.normal(size=400),
    }
    known = np.full(400, np.nan)
    known[:40] = truth[:40]
    return truth, scores, known


def test_fitted_weights_beat_the_single_proxies_on_held_out_architectures():
    truth, scores, known = two_halves(seed=0)
    weights = fit_proxy_weights(scores, known)
    combined = weights.combine(scores)
    held = slice(40, None)
    rho = stats.spearmanr(combined[held], truth[held]).statistic
    singles = {n: stats.spearmanr(s[held], truth[held]).statistic for n, s in scores.items()}
    assert rho > max(singles.values())
    assert rho > min(singles.values())
    assert weights.as_dict()["anti"] < 0 < weights.as_dict()["half_a"]
    ridge = fit_proxy_weights(scores, known, method="ridge")
    assert stats.spearmanr(ridge.combine(scores)[held], truth[held]).statistic > 0.8


def test_non_negative_fit_ignores_noise_and_anti_correlated_proxies():
    """nnls keeps every weight >= 0, so the noise and the anti-correlated proxy (which a
    higher-is-better proxy should never be) get weight zero and the two halves are combined."""
    truth, scores, known = two_halves(seed=1)
    fit = fit_proxy_weights(scores, known, method="nnls")
    w = fit.as_dict()
    assert min(w.values()) >= 0 and w["anti"] == 0
    assert w["half_a"] > 0.5 and w["half_b"] > 0.5
    held = slice(40, None)
    rho = stats.spearmanr(fit.combine(scores)[held], truth[held]).statistic
    assert rho > max(stats.spearmanr(s[held], truth[held]).statistic for s in scores.values())
    with pytest.raises(ArchsearchError, match="nnls"):
        fit_proxy_weights(scores, known, method="lasso")


def test_fitting_needs_a_few_evaluated_architectures():
    with pytest.raises(ArchsearchError, match="at least 3"):
        fit_proxy_weights({"a": [1.0, 2.0, 3.0]}, [1.0, math.nan, math.nan])


def test_diagnostics_rank_minus_infinity_last_and_report_the_size_bias():
    truth = [1.0, 2.0, 3.0, 4.0, 5.0]
    size = [5.0, 4.0, 3.0, 2.0, 1.0]
    np.testing.assert_array_less(orderable([-math.inf, 0.0, 1.0])[0], 0.0)
    rows = diagnose_estimators(
        {"good": [-math.inf, 2.0, 3.0, 4.0, 5.0], "size": size},
        truth,
        params=size,
        flops=size,
        top_k=2,
    )
    good, by_size = rows
    assert good["n"] == 5 and good["spearman"] == pytest.approx(1.0)
    assert good["spearman_params"] == pytest.approx(-1.0)
    assert by_size["spearman"] == pytest.approx(-1.0)
    assert (good["best_true_rank"], good["worst_true_rank"]) == (1, 2)


def test_score_architectures_uses_a_thin_copy_for_linear_regions():
    space = NB201Space(channels=4, cells_per_stage=1)
    assert thin_space(space).channels == 1
    archs = [space.from_index(i) for i in (1, 2)]
    x, y = random_batch(8, (3, 16, 16), 10)
    scores, seconds = score_architectures(
        space, archs, ["params", "linear_regions"], x, y, num_classes=10
    )
    assert scores["params"][0] > 1000  # the full network
    assert 1 < scores["linear_regions"][0] <= 1000
    assert np.all(seconds["params"] > 0)


# ----------------------------------------------------------------- Zen-score reference
@pytest.mark.slow
def test_zen_score_matches_the_reference_column_of_the_shared_table(nb201_csv):
    """The shared table's ``zen_cifar10`` was computed by a public NAS library for the
    C=16, N=5 network; ours agrees on random architectures to ~1 unit in ~100
    (benchmarks/proxy_correlation.py checks 1,000)."""
    with open(nb201_csv) as f:
        rows = list(csv.DictReader(f))
    pick = np.random.default_rng(7).choice(len(rows), 12, replace=False)
    space = NB201Space()
    x = torch.zeros(16, 3, 32, 32)  # Zen reads only the shape
    ours, reference = [], []
    for i in pick:
        model = space.build(space.from_string(rows[i]["arch"]), (3, 32, 32), 10)
        ours.append(compute_proxy("zen", model, x, seed=0))
        reference.append(float(rows[i]["zen_cifar10"]))
    ours, reference = np.array(ours), np.array(reference)
    dead = reference < -1e7  # the reference marks networks with no path as -1e8
    assert np.array_equal(dead, ours == -math.inf)
    assert stats.spearmanr(ours[~dead], reference[~dead]).statistic >= 0.95
    assert np.median(np.abs(ours[~dead] - reference[~dead])) < 3.0
