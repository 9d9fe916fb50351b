"""Pruning-at-initialisation saliencies summed over a network (Abdelfattah et al., ICLR 2021).

"Zero-Cost Proxies for Lightweight NAS" turned per-weight saliencies from pruning papers into
architecture scores: compute the saliency of every weight of every convolution and linear
layer at initialisation and sum. We follow their code's choices: the network in training mode
(batch-norm with batch statistics), one batch, cross-entropy, conv/linear weights only, and
synflow on a copy without batch-norm. Batch sizes are smaller than their 64 (documented per
proxy) to keep all proxies of one NAS-Bench-201 network under two CPU-seconds; the sums are
averages over the batch, so a smaller batch adds noise, not bias.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from archsearch.proxies.base import LossFn, register_proxy, remove_batchnorm, weight_layers

#: rows of the batch used by the gradient saliencies
SALIENCY_BATCH = 16


@dataclass
class _SaliencyPass:
    """One forward and backward pass that every gradient saliency reads."""

    key: tuple
    weights: list[torch.Tensor]
    #: dL/dW, with the graph kept for GraSP's Hessian-gradient product
    weight_grads: list[torch.Tensor]
    #: outputs a of the conv/linear layers and dL/da, for Fisher
    activations: list[torch.Tensor]
    activation_grads: list[torch.Tensor]


_PASSES: weakref.WeakKeyDictionary[nn.Module, _SaliencyPass] = weakref.WeakKeyDictionary()


def _saliency_pass(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn
) -> _SaliencyPass:
    """Gradients of the loss with respect to conv/linear weights and outputs.

    Computed once per model copy, batch and loss, so that grad_norm, snip, fisher and grasp
    scored together (:func:`~archsearch.proxies.base.compute_proxies`) share one pass; the
    values are those of separate passes, since the weights do not change in between.
    """
    key = (inputs.data_ptr(), tuple(inputs.shape), inputs._version, id(loss_fn))
    key += (targets.data_ptr(), tuple(targets.shape), targets._version)
    cached = _PASSES.get(model)
    if cached is not None and cached.key == key:
        return cached
    layers = [m for _, m in weight_layers(model)]
    outputs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda mod, i, out: outputs.append(out)) for m in layers]
    try:
        loss = loss_fn(model(inputs), targets)
    finally:
        for h in handles:
            h.remove()
    weights = [m.weight for m in layers]
    acts = [a for a in outputs if a.requires_grad]
    grads = torch.autograd.grad(loss, weights + acts, create_graph=True, allow_unused=True)
    grads = [
        torch.zeros_like(t) if g is None else g for t, g in zip(weights + acts, grads, strict=True)
    ]
    result = _SaliencyPass(key, weights, grads[: len(weights)], acts, grads[len(weights) :])
    _PASSES[model] = result
    return result


@register_proxy("grad_norm", uses_labels=True, batch_size=SALIENCY_BATCH)
def grad_norm(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn
) -> float:
    """Gradient norm (Abdelfattah et al. 2021): sum over layers l of ||dL/dW_l||_2."""
    p = _saliency_pass(model, inputs, targets, loss_fn)
    return float(sum(g.detach().norm() for g in p.weight_grads))


@register_proxy("snip", uses_labels=True, batch_size=SALIENCY_BATCH)
def snip(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn) -> float:
    """SNIP (Lee et al., ICLR 2019): sum over weights of |W * dL/dW|.

    SNIP's connection sensitivity |dL/dc| for a multiplicative mask c = 1 equals |W dL/dW|.
    """
    p = _saliency_pass(model, inputs, targets, loss_fn)
    return float(
        sum((w * g).abs().sum() for w, g in zip(p.weights, p.weight_grads, strict=True)).detach()
    )


@register_proxy("grasp", uses_labels=True, batch_size=SALIENCY_BATCH)
def grasp(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn) -> float:
    """GraSP (Wang et al., ICLR 2020): sum over weights of -W * (H g), g = dL/dW.

    H g is the Hessian-gradient product, computed by differentiating g . stop_grad(g) once
    more; the sign follows the zero-cost-proxies code, so removing weights with high score
    would reduce gradient flow the least.
    """
    p = _saliency_pass(model, inputs, targets, loss_fn)
    terms = [(g * g.detach()).sum() for g in p.weight_grads if g.requires_grad]
    if not terms:  # no weight reaches the loss
        return 0.0
    hg = torch.autograd.grad(sum(terms), p.weights, retain_graph=True, allow_unused=True)
    return float(
        sum((-w * h).sum() for w, h in zip(p.weights, hg, strict=True) if h is not None).detach()
    )


@register_proxy("fisher", uses_labels=True, batch_size=SALIENCY_BATCH)
def fisher(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn) -> float:
    """Fisher (Theis et al. 2018; Turner et al., ICLR 2020): sum over channels of
    0.5 * mean_n (sum_{h,w} a * dL/da)^2, a = the output of each conv/linear layer.

    The increase in loss from removing a channel, to second order.
    """
    p = _saliency_pass(model, inputs, targets, loss_fn)
    total = 0.0
    for a, g in zip(p.activations, p.activation_grads, strict=True):
        ag = (a * g).detach()
        per_channel = ag.flatten(2).sum(-1) if ag.dim() > 2 else ag
        total += float(0.5 * per_channel.pow(2).mean(0).sum())
    return total


@register_proxy("synflow", uses_data=False, batch_size=1, mutates=True)
def synflow(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn
) -> float:
    """SynFlow (Tanaka et al., NeurIPS 2020), as used by Abdelfattah et al. 2021:
    log sum over weights of W * dR/dW, R = 1^T f_|W|(1).

    The network is evaluated with every parameter replaced by its absolute value, on an
    all-ones input, without batch-norm (the zero-cost-proxies ``bn=False`` copy) and in
    float64, so that the product of layer scales (1e40 and more for NAS-Bench-201) neither
    overflows nor loses precision. Data-free: only the input shape is read. We return the
    natural logarithm of the sum (same ranking; readable numbers); ``-inf`` when no path
    connects input and output.
    """
    model = remove_batchnorm(model).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    weights = [m.weight for _, m in weight_layers(model)]
    r = model(ones).sum()
    if not r.requires_grad:
        return -math.inf
    grads = torch.autograd.grad(r, weights, allow_unused=True)
    total = float(
        sum((w * g).detach().sum() for w, g in zip(weights, grads, strict=True) if g is not None)
    )
    return math.log(total) if total > 0 else -math.inf


@register_proxy("l2_norm", uses_data=False)
def l2_norm(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn
) -> float:
    """L2 norm (Abdelfattah et al. 2021, NASLib): sum over conv/linear layers of ||W_l||_2.

    A size proxy in disguise: at a fixed initialisation scheme it grows with the number of
    weights per layer.
    """
    return float(sum(m.weight.detach().norm() for _, m in weight_layers(model)))
