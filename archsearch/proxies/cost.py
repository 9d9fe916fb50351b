"""Model size and compute: the baselines every proxy must beat.

Reviews of zero-cost proxies (Abdelfattah et al., ICLR 2021; Krishnakumar et al., NeurIPS
2022 Datasets & Benchmarks) found that #params and FLOPs rank NAS-Bench-201 cells about as
well as many proxies, so they are proxies here too and are reported beside every other one.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.proxies.base import LossFn, register_proxy


@register_proxy("params", uses_data=False)
def params(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn
) -> float:
    """Number of trainable parameters (baseline): more capacity predicts higher accuracy."""
    from archsearch.hardware.cost import count_params

    return float(count_params(model))


@register_proxy("flops", uses_data=False, batch_size=1)
def flops(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn
) -> float:
    """FLOPs of one forward pass of one input (baseline), counted by torch's flop counter.

    Counts two FLOPs per multiply-accumulate of convolutions and matrix products and nothing
    for pooling or element-wise operations (``torch.utils.flop_counter``); the ranking agrees
    with multiply-accumulate counts that include pooling.
    """
    from archsearch.hardware.cost import count_flops

    model.eval()  # one input: batch-norm must not need batch statistics
    return float(count_flops(model, tuple(inputs.shape[1:]), batch_size=1))
