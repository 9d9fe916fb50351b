"""Hardware-independent costs of a network: parameters and FLOPs.

NAS-Bench-201 (Dong & Yang, ICLR 2020) reports both for every architecture, and
hardware-aware searches constrain or trade off against them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: torch.nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: torch.nn.Module, input_shape: Sequence[int], batch_size: int = 1) -> int:
    """FLOPs of one forward pass on a batch of ``batch_size`` inputs of shape ``input_shape``.

    Counted by ``torch.utils.flop_counter.FlopCounterMode``: two FLOPs per multiply-add of
    convolutions and matrix products. Pooling, normalisation, activations and additions are
    not counted, so values differ from NAS-Bench-201's published FLOPs (one per multiply-add,
    pooling included) while ranking architectures alike. The model runs in eval mode, under
    ``torch.no_grad``, on a zero input; its training flag is restored afterwards.
    """
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    x = torch.zeros(batch_size, *input_shape, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
