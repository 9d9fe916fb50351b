"""A network cut into the pieces a latency lookup table measures.

ProxylessNAS and FBNet predict a network's latency as the sum of its operations' latencies,
each measured once *in its context*: the same 5x5 inverted-residual block costs differently
at 32 and 8 pixels, with 24 or 96 channels, at stride 1 or 2. A space that supports the
``latency_units`` capability cuts each of its networks into :class:`Unit` s whose keys name
that context, and lists every unit any of its networks can hold, so that a table measured
once (``archsearch latency-table``) prices every architecture of the space by lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Unit:
    """One measured piece of a network.

    ``key`` names the operation and its context (for instance
    ``"s2.b0:mbconv:k5:e4:se0:c24>40:s2:r16"``): two units with one key compute the same
    thing on the same shapes. ``input_shape`` is the piece's input without the batch
    dimension; ``build`` makes a fresh module that computes exactly that piece of the network
    (an inactive piece is simply not a unit). ``live`` is False for a piece whose result
    the network's output never reads (a NAS-Bench-201 node that feeds nothing): PyTorch
    still runs it, a deployment runtime that eliminates dead code does not.
    """

    key: str
    input_shape: tuple[int, ...]
    build: Callable[[], torch.nn.Module]
    live: bool = True
