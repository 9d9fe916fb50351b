"""Proxies that read a network's activations or its input-output map, not its loss.

NASWOT and jacob_cov (Mellor et al.), Zen-score (Lin et al.) and the number of linear regions
(TE-NAS, Chen et al.) all ask how differently a freshly initialised network treats different
inputs: a network that maps distinct inputs to distinct codes is expected to train better.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from archsearch.proxies.base import (
    LossFn,
    features_before_pooling,
    register_proxy,
    relu_modules,
)

#: NASWOT scores a batch of 128 in the paper; 32 keeps its ranking (Spearman between
#: batch 32 and 128 on NAS-Bench-201 is high) at a quarter of the cost
NASWOT_BATCH = 32
JACOB_COV_BATCH = 16
#: Zen-NAS uses a batch of 64 at every resolution; the score averages the feature-map
#: difference over the batch and sums BN scales, so 16 barely moves its ranking
ZEN_BATCH = 16
ZEN_ALPHA = 0.01
#: TE-NAS counts regions on 1000 samples of 3x3 inputs (its prune_tenas.py)
REGION_SAMPLES = 1000
REGION_SIZE = 3


def _relu_codes(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor | None:
    """Binary codes (n, units): 1 where a ReLU unit's input is positive, per sample."""
    codes: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        # ReLU(x) > 0 exactly where x > 0, and the output survives an in-place ReLU
        codes.append((out.detach() > 0).flatten(1))

    _forward_with_relu_hook(model, inputs, hook)
    return torch.cat(codes, dim=1) if codes else None


def _forward_with_relu_hook(model: nn.Module, inputs: torch.Tensor, hook: object) -> int:
    """Run ``model`` on ``inputs`` without gradients, ``hook`` on every ReLU; returns how many
    ReLU modules there are."""
    relus = relu_modules(model)
    handles = [m.register_forward_hook(hook) for m in relus]  # type: ignore[arg-type]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    return len(relus)


@register_proxy("naswot", batch_size=NASWOT_BATCH)
def naswot(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn
) -> float:
    """NASWOT (Mellor et al., ICML 2021): log |det K_H|, K_H[i, j] = N_A - d_H(c_i, c_j).

    c_i is the binary code of which ReLU units are active for input i, N_A the number of
    units and d_H the Hamming distance, so K_H = C C^T + (1 - C)(1 - C)^T. Networks whose
    codes separate the inputs of a batch have a better-conditioned kernel. ``nan`` for a
    network without ``nn.ReLU`` modules.
    """
    n = len(inputs)
    kernel = torch.zeros((n, n), dtype=torch.float64, device=inputs.device)

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        # per layer, so that the codes of all layers never sit in memory at once; float32
        # holds these integer counts exactly (one layer has far fewer than 2**24 units)
        c = (out.detach() > 0).flatten(1).float()
        agree = c @ c.T + (1 - c) @ (1 - c).T
        kernel.add_(agree.double())

    if _forward_with_relu_hook(model, inputs, hook) == 0:
        return math.nan
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else -math.inf


@register_proxy("jacob_cov", batch_size=JACOB_COV_BATCH)
def jacob_cov(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn
) -> float:
    """Jacobian covariance (Mellor et al. 2020, arXiv v1 of NASWOT):
    -sum_i [log(v_i + k) + 1 / (v_i + k)], k = 1e-5,

    v the eigenvalues of the correlation matrix of the per-input Jacobians J_i = d(sum f(x_i))
    / dx_i; uncorrelated Jacobians (v near 1) score highest. One vector-Jacobian product of
    the batch (``torch.func.vjp``) gives all J_i, as the paper's backward of ones does.
    """
    torch.func.replace_all_batch_norm_modules_(model)  # batch statistics, no buffer updates
    x = inputs.detach().clone()
    out, vjp_fn = torch.func.vjp(model, x)
    (jac,) = vjp_fn(torch.ones_like(out))
    jac = jac.reshape(len(x), -1).double()
    if not torch.isfinite(jac).all() or (jac.std(dim=1) == 0).any():
        return -math.inf  # an input that does not move the output: predicted worst
    corr = torch.corrcoef(jac)
    v = torch.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-(torch.log(v + k) + 1.0 / (v + k)).sum().detach())


def _gaussian_init(model: nn.Module) -> None:
    """Zen-NAS's initialisation: N(0, 1) conv and linear weights, zero biases, BN (1, 0),
    fresh BN running statistics."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.conv._ConvNd | nn.Linear):
                nn.init.normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm | nn.GroupNorm):
                if m.weight is not None:
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.reset_running_stats()  # the score reads the variances of its own passes


@register_proxy("zen", uses_data=False, batch_size=ZEN_BATCH, mutates=True)
def zen(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn
) -> float:
    """Zen-score (Lin et al., ICCV 2021, Zen-NAS eq. 5):
    log E_x ||f(x) - f(x + alpha e)||_1 + sum_BN log sqrt(mean_c sigma_c^2),

    f the feature map before global pooling (classifier removed), x and e standard Gaussian,
    alpha = 0.01, weights re-drawn from N(0, 1) and BN in training mode; sigma_c^2 is the BN
    layer's running variance after the two forward passes, as in the Zen-NAS code (and the
    library that produced the shared table's ``zen_cifar10``), which rescales away the
    normalisation that BN applied. Data-free: only the input shape is read. ``-inf`` when the
    output does not depend on the input.

    The classifier (global pooling and linear layer) is always removed. Zen-NAS's search
    code can also drop residual links when scoring its own networks; for NAS-Bench-201 we
    keep the reduction blocks' shortcuts, and so configured the score reproduces the shared
    table's ``zen_cifar10`` reference (Spearman 0.999 and median difference under 1, on
    scores from 10 to 276; ``benchmarks/proxy_correlation.py`` checks 1,000 networks).
    """
    _gaussian_init(model)
    with torch.no_grad():
        x = torch.randn(inputs.shape, dtype=inputs.dtype, device=inputs.device)
        e = torch.randn(inputs.shape, dtype=inputs.dtype, device=inputs.device)
        f1 = features_before_pooling(model, x)
        f2 = features_before_pooling(model, x + ZEN_ALPHA * e)
        delta = (f1 - f2).abs().flatten(1).sum(1).mean()
        log_bn = 0.0
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
                log_bn += float(torch.log(torch.sqrt(m.running_var.mean())))
    if not delta > 0:
        return -math.inf
    return float(torch.log(delta)) + log_bn


@register_proxy("linear_regions", uses_data=False, thin_probe=True)
def linear_regions(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn
) -> float:
    """Number of linear regions (TE-NAS, Chen et al., ICLR 2021, Sec. 3.2): the number of
    distinct ReLU activation patterns over 1000 Gaussian inputs of 3x3 pixels.

    A ReLU network is linear on each region of input space where its activation pattern is
    constant; more regions means a more expressive network. TE-NAS's
    ``sum_i 1 / #{j : c_j = c_i}`` is the number of distinct rows of the code matrix. The
    count saturates at the number of samples once a network has many units: every one of
    the 1000 inputs then has its own pattern (a NAS-Bench-201 network at C=16 does). TE-NAS
    therefore counts on a thin network (C=1, N=1) with 3x3 inputs
    (``Linear_Region_Collector(input_size=(1000, 1, 3, 3))``); the proxy is registered with
    ``thin_probe=True`` so that runners which can build a width-1 copy score that one
    (:func:`archsearch.proxies.runner.score_architectures` does for NAS-Bench-201). A network
    that cannot take 3x3 inputs is scored at its own input shape.
    """
    shape = (REGION_SAMPLES, inputs.shape[1], REGION_SIZE, REGION_SIZE)
    x = torch.randn(shape, dtype=inputs.dtype, device=inputs.device)
    try:
        codes = _relu_codes(model, x)
    except RuntimeError:  # too small for this network
        x = torch.randn((REGION_SAMPLES, *inputs.shape[1:]), device=inputs.device)
        codes = _relu_codes(model, x)
    if codes is None:
        return math.nan
    return float(torch.unique(codes, dim=0).shape[0])
