"""Supernet mechanics: mixed-operation math, single paths, GDAS sampling, derivation rules
and the second-order DARTS hypergradient."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from archsearch.oneshot import DARTSSupernet, EdgeChoice, MixedOp, NB201Supernet
from archsearch.oneshot.differentiable import gumbel_softmax_hard, unrolled_hypergradient
from archsearch.space import darts as darts_space
from archsearch.space.nb201 import NB201Space


@pytest.fixture(autouse=True)
def one_thread():
    """The machines running the tests are shared: one thread avoids oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_nb201(dtype=torch.float32) -> NB201Supernet:
    torch.manual_seed(0)
    return NB201Supernet(1, 3, channels=2, cells_per_stage=1).to(dtype)


def tiny_darts() -> DARTSSupernet:
    torch.manual_seed(0)
    return DARTSSupernet(1, 3, channels=4, layers=3)


def count_op_calls(net: nn.Module) -> dict[int, int]:
    """Forward calls per candidate operation (keyed by id), via forward hooks."""
    calls: dict[int, int] = {}
    for mixed in net.modules():
        if isinstance(mixed, MixedOp):
            for op in mixed.ops:
                calls[id(op)] = 0
                op.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls[id(m)] + 1))
    return calls


def test_relaxed_mixed_op_is_the_softmax_weighted_sum_of_its_operations():
    torch.manual_seed(0)
    ops = [nn.Conv2d(2, 2, 3, padding=1), nn.Identity(), nn.AvgPool2d(3, 1, 1)]
    mixed = MixedOp(ops)
    weights = torch.randn(3).softmax(dim=0)
    x = torch.randn(2, 2, 5, 5)
    assert float(weights.sum()) == pytest.approx(1.0)
    expected = sum(w * op(x) for w, op in zip(weights, ops, strict=True))
    torch.testing.assert_close(mixed(x, weights=weights), expected)


def test_supernet_softmax_weights_sum_to_one_per_edge():
    for net in (tiny_nb201(), tiny_darts()):
        for w in net.softmax_weights().values():
            torch.testing.assert_close(w.sum(dim=-1), torch.ones(len(w)))


def test_single_path_runs_only_the_sampled_operation_on_each_edge():
    net = tiny_nb201()
    calls = count_op_calls(net)
    arch = NB201Space().from_string(
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
    )
    net(torch.randn(2, 1, 8, 8), net.path_of(arch))
    cells = [m for m in net.modules() if m.__class__.__name__ == "NB201SearchCell"]
    for cell in cells:
        for edge, label in zip(cell.edges, net.edges["cell"], strict=True):
            ran = [net.operations[k] for k, op in enumerate(edge.ops) if calls[id(op)]]
            assert ran == [arch[label]]
    assert sum(calls.values()) == 3 * 6  # three cells, six edges, one operation each


def test_relaxation_runs_every_operation_and_single_path_one_in_the_darts_supernet():
    net = tiny_darts()
    calls = count_op_calls(net)
    net(torch.randn(2, 1, 8, 8), net.relaxed_path())
    assert all(n == 1 for n in calls.values())  # 3 cells x 14 edges x 8 operations
    for k in calls:
        calls[k] = 0
    arch = net.space.sample(np.random.default_rng(0))
    net(torch.randn(2, 1, 8, 8), net.path_of(arch))
    assert sum(calls.values()) == 3 * 14  # one operation per edge (``none`` off the path)


def test_gdas_sample_is_one_hot_forward_with_gradients_to_every_alpha():
    torch.manual_seed(0)
    alpha = nn.Parameter(torch.randn(4, 5))
    hard, index = gumbel_softmax_hard(alpha, tau=1.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(hard.detach(), F.one_hot(torch.tensor(index), 5).float())
    ops = [nn.Conv2d(2, 2, 1) for _ in range(5)]
    mixed = MixedOp(ops)
    calls = count_op_calls(mixed)
    x = torch.randn(2, 2, 4, 4)
    out = mixed(x, weights=hard[0], index=index[0])
    assert sum(calls.values()) == 1
    torch.testing.assert_close(out, ops[index[0]](x))  # the forward is the sampled op alone
    out.square().sum().backward()
    assert alpha.grad is not None
    assert torch.all(alpha.grad[0] != 0)  # straight-through: every alpha of the edge learns
    assert torch.all(alpha.grad[1:] == 0)


def test_nb201_derivation_takes_the_argmax_of_each_edge():
    net = tiny_nb201()
    ops = net.operations
    chosen = ["nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none"]
    weights = np.full((6, 5), 0.1)
    for e, op in enumerate(chosen):
        weights[e, ops.index(op)] = 0.6
    arch = net.derive({"cell": weights})
    assert [arch[label] for label in net.edges["cell"]] == chosen


def test_darts_derivation_keeps_two_strongest_inputs_per_node_ignoring_none():
    net = tiny_darts()
    ops, edges = net.operations, [(n, i) for n in darts_space.NODES for i in range(n)]
    weights = np.full((14, 8), 0.05)
    # node 3: input 2 has the largest weight overall, but on ``none``, so it must lose
    weights[edges.index((3, 2)), ops.index("none")] = 0.9
    weights[edges.index((3, 0)), ops.index("sep_conv_5x5")] = 0.5
    weights[edges.index((3, 1)), ops.index("skip_connect")] = 0.4
    # node 5: inputs 4 and 1 strongest, in that order
    weights[edges.index((5, 4)), ops.index("dil_conv_3x3")] = 0.7
    weights[edges.index((5, 1)), ops.index("max_pool_3x3")] = 0.6
    weights[edges.index((5, 0)), ops.index("sep_conv_3x3")] = 0.3
    arch = net.derive({"normal": weights, "reduce": weights})
    g = net.space.genotype(arch)["normal"]
    assert g[2:4] == [("sep_conv_5x5", 0), ("skip_connect", 1)]
    assert g[6:8] == [("max_pool_3x3", 1), ("dil_conv_3x3", 4)]
    assert "none" not in {op for op, _ in g}


@pytest.mark.parametrize("make", [tiny_nb201, tiny_darts])
def test_derivation_of_a_one_hot_path_gives_the_architecture_back(make):
    net = make()
    rng = np.random.default_rng(1)
    for _ in range(5):
        arch = net.space.sample(rng)
        assert net.derive(net.one_hot(arch)) == arch


def smooth(module: nn.Module) -> nn.Module:
    """Swap every ReLU for tanh: eq. 8's central difference is exact to O(eps^2) only for
    a smooth loss (across a ReLU kink the gradient jumps), and eq. 7 itself is exact."""
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, nn.Tanh())
        else:
            smooth(child)
    return module


@pytest.mark.slow
def test_second_order_hypergradient_matches_finite_differences_of_the_unrolled_loss():
    """Liu et al. 2019, eq. 7-8: the finite-difference Hessian-vector product gives the
    gradient of L_val(w - xi grad_w L_train(w, a), a), checked by central differences."""
    net = smooth(tiny_nb201(torch.float64))
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.normal_(0, 0.5)
    gen = torch.Generator().manual_seed(0)
    xt, xv = torch.randn(32, 1, 4, 4, generator=gen, dtype=torch.float64).split(16)
    yt, yv = torch.randint(0, 3, (2, 16), generator=gen)
    xi = 0.5
    alpha_name = "alphas.cell"
    weight_names = [n for n, _ in net.named_parameters() if n != alpha_name]

    def loss(params, x, y):
        path = {"cell": EdgeChoice(weights=params[alpha_name].softmax(dim=-1))}
        return F.cross_entropy(functional_call(net, params, (x, path)), y)

    def unrolled(alpha: torch.Tensor) -> torch.Tensor:
        """L_val(w - xi grad_w L_train(w, alpha), alpha), computed directly."""
        params = {**dict(net.named_parameters()), alpha_name: alpha}
        grads = torch.autograd.grad(loss(params, xt, yt), [params[n] for n in weight_names])
        step = {n: params[n] - xi * g for n, g in zip(weight_names, grads, strict=True)}
        return loss({**params, **step}, xv, yv).detach()

    before = [p.detach().clone() for p in net.weight_parameters()]
    ours, _, _ = unrolled_hypergradient(net, net.relaxed_path, (xt, yt), (xv, yv), xi)
    for p, p0 in zip(net.weight_parameters(), before, strict=True):
        assert torch.equal(p, p0)  # the virtual step is undone

    alpha0 = net.alphas["cell"].detach().clone()
    numeric = torch.zeros_like(alpha0)
    h = 1e-5
    for idx in np.ndindex(*alpha0.shape):
        plus, minus = alpha0.clone(), alpha0.clone()
        plus[idx] += h
        minus[idx] -= h
        numeric[idx] = (unrolled(plus) - unrolled(minus)) / (2 * h)
    torch.testing.assert_close(ours[0], numeric, rtol=1e-2, atol=2e-3)
    # the second-order term matters here: the first-order gradient is far from it
    first = torch.autograd.grad(loss(dict(net.named_parameters()), xv, yv), net.alphas["cell"])
    assert float((first[0] - numeric).abs().max()) > 0.1


def test_collapse_diagnostics_count_skips_and_parameter_free_operations():
    nb201 = tiny_nb201()
    cell = nb201.space.from_string(
        "|skip_connect~0|+|none~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|"
    )
    assert nb201.skip_count(cell) == 2
    assert nb201.skip_share(cell) == 2 / 6
    assert nb201.parameter_free_share(cell) == 3 / 6  # two skips and a pooling; none cuts

    darts = tiny_darts()
    normal = ["skip_connect", "max_pool_3x3", "sep_conv_3x3", "dil_conv_5x5"] * 2
    ops = iter(normal)
    arch = darts.space.make({
        darts_space.label(kind, node, field): (
            next(ops) if kind == "normal" else "sep_conv_3x3"
        ) if field.startswith("op") else int(field[-1])
        for kind in darts_space.CELLS
        for node in darts_space.NODES
        for field in ("in0", "op0", "in1", "op1")
    })  # fmt: skip
    assert darts.counted_operations(arch) == normal
    assert darts.skip_share(arch) == 2 / 8
    assert darts.parameter_free_share(arch) == 4 / 8
