"""Proxies built on per-sample gradients: the NTK condition number (TE-NAS) and ZiCo.

Both need the gradient of every sample separately. ``torch.func`` computes them in one
vectorised pass (``vmap`` over ``grad`` of a ``functional_call``) instead of one backward per
sample. Under ``vmap`` every sample is its own batch, so batch-norm normalises each sample
with its own spatial statistics (running statistics are switched off with
``torch.func.replace_all_batch_norm_modules_``); the papers back-propagate each sample through
the batch's shared statistics, which couples samples. The per-sample form is the kernel of
the network as a per-input function and costs one backward pass instead of one per sample.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

from archsearch.proxies.base import LossFn, register_proxy, weight_layers

#: TE-NAS uses a batch of 64 (and repeats 3 times); 16 samples give a 16x16 kernel
NTK_BATCH = 16
#: ZiCo uses two batches of 64; 16 single samples give the gradient mean and spread
ZICO_BATCH = 16


def per_sample_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    names: Sequence[str],
    *,
    vector: bool = False,
) -> dict[str, torch.Tensor]:
    """d objective(model(x_i), y_i) / d theta for every sample i and each parameter in
    ``names``: a dict of tensors of shape (n, *parameter.shape); with ``vector=True`` the
    objective returns k values and the shapes are (n, k, *parameter.shape) (a per-sample
    Jacobian: one forward pass serves all k).

    Modifies ``model``'s batch-norm layers (no running statistics); call it on a copy.
    """
    torch.func.replace_all_batch_norm_modules_(model)
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    chosen = {n: params[n] for n in names}
    fixed = {n: p for n, p in params.items() if n not in chosen}
    y = targets if targets is not None else torch.zeros(len(inputs), device=inputs.device)

    def one(theta: dict[str, torch.Tensor], x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, ({**fixed, **theta}, buffers), (x.unsqueeze(0),))
        return objective(out, t.unsqueeze(0))

    transform = jacrev if vector else grad
    return vmap(transform(one), in_dims=(None, 0, 0))(chosen, inputs, y)


@dataclass
class _PerSamplePass:
    key: tuple
    #: per-sample gradients of the sum of the logits, for every parameter named "weight"
    logit_sum: dict[str, torch.Tensor]
    #: per-sample gradients of the loss (None without targets), same parameters
    loss: dict[str, torch.Tensor] | None


_PASSES: weakref.WeakKeyDictionary[nn.Module, _PerSamplePass] = weakref.WeakKeyDictionary()


def _per_sample_pass(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn
) -> _PerSamplePass:
    """Per-sample gradients of the logit sum (NTK) and of the loss (ZiCo) in one vectorised
    pass, computed once per model copy, batch and loss when both proxies are scored together
    (their values equal separate passes: the weights do not change in between)."""
    key: tuple = (inputs.data_ptr(), tuple(inputs.shape), inputs._version, id(loss_fn))
    if targets is not None:
        key += (targets.data_ptr(), tuple(targets.shape), targets._version)
    cached = _PASSES.get(model)
    if cached is not None and cached.key == key:
        return cached
    names = [n for n, p in model.named_parameters() if "weight" in n and p.requires_grad]
    if targets is None:
        grads = per_sample_gradients(model, inputs, None, lambda out, _: out.sum(), names)
        result = _PerSamplePass(key, grads, None)
    else:

        def both(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return torch.stack([out.sum(), loss_fn(out, t)])

        jac = per_sample_gradients(model, inputs, targets, both, names, vector=True)
        result = _PerSamplePass(
            key, {n: g[:, 0] for n, g in jac.items()}, {n: g[:, 1] for n, g in jac.items()}
        )
    _PASSES[model] = result
    return result


@register_proxy("ntk", batch_size=NTK_BATCH)
def ntk(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn
) -> float:
    """NTK condition number (TE-NAS, Chen et al., ICLR 2021, eq. 3), negated:
    -lambda_max / lambda_min of Theta = J J^T,

    J[i] the gradient of the sum of sample i's logits with respect to every weight (TE-NAS
    takes all parameters named ``weight``: convolutions, linear and BN scales). A small
    condition number predicts fast, trainable optimisation, so the score is ``-cond`` (higher
    is better); ``-inf`` for a singular kernel. Uses the given inputs (TE-NAS: data batches).
    """
    grads = _per_sample_pass(model, inputs, targets, loss_fn).logit_sum
    jac = torch.cat([g.reshape(len(inputs), -1) for g in grads.values()], dim=1).double()
    eig = torch.linalg.eigvalsh(jac @ jac.T)
    if not torch.isfinite(eig).all() or eig[0] <= 0:
        return -math.inf
    return float(-(eig[-1] / eig[0]))


@register_proxy("zico", uses_labels=True, batch_size=ZICO_BATCH)
def zico(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn) -> float:
    """ZiCo (Li et al., ICLR 2023, eq. 9): sum over layers l of
    log( sum_{theta in l} mean_i |g_i(theta)| / std_i g_i(theta) ),

    g_i the gradient of sample i's loss, over conv/linear weights with nonzero spread. High
    mean and low variance of gradients across samples predict fast convergence and good
    generalisation. The paper takes mean and std over two mini-batches; we take them over
    single samples (per-sample gradients), as the score's definition states.
    """
    layers = [f"{n}.weight" if n else "weight" for n, _ in weight_layers(model)]
    per_sample = _per_sample_pass(model, inputs, targets, loss_fn).loss or {}
    total = 0.0
    for g in (per_sample[n] for n in layers):
        g = g.reshape(len(inputs), -1).double()
        std = g.std(dim=0, unbiased=False)
        keep = std > 0
        ratio = float((g.abs().mean(dim=0)[keep] / std[keep]).sum())
        if ratio > 0:
            total += math.log(ratio)
    return total
