"""Few-shot supernets: one copy of the supernet per operation of one edge.

A one-shot supernet makes every architecture share one set of weights, and the
architectures interfere: a convolution's weights are trained for every context it appears
in, which scrambles the ranking of inherited-weight accuracies (Yu et al., ICLR 2020).
Few-shot NAS (Zhao et al., ICML 2021) splits the supernet on one edge into K sub-supernets,
sub-supernet k holding the architectures with operation k on that edge; each starts from
the trained one-shot weights and is trained a few more epochs on its own architectures only.
An architecture is then scored with the sub-supernet that owns it, where it shares weights
with a K-th of the space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.oneshot.supernet import EdgeChoice, Path, Supernet
from archsearch.space.base import Architecture


class SplitSupernet(Supernet):
    """Sub-supernets of one space, ``parts[k]`` owning the architectures whose edge ``edge``
    of cell kind ``kind`` holds operation ``k``.

    It computes single paths only (SPOS scoring): ``forward(x, path)`` runs the owner of the
    path. The parts' alphas are kept (checkpoints round-trip) but no method learns them here.
    """

    def __init__(self, parts: Sequence[Supernet], kind: str, edge: int) -> None:
        super().__init__()
        if not parts:
            raise ArchsearchError("a split supernet needs its parts")
        first = parts[0]
        if any(part.config() != first.config() for part in parts):
            raise ArchsearchError("the parts of a split supernet must be copies of one supernet")
        if len(parts) != len(first.operations):
            raise ArchsearchError(
                f"a split supernet needs one part per operation ({len(first.operations)}), "
                f"got {len(parts)}"
            )
        if kind not in first.edges or not 0 <= edge < len(first.edges[kind]):
            raise ArchsearchError(f"no edge {edge} in cell kind {kind!r} to split on")
        self.parts = nn.ModuleList(parts)
        self.kind, self.edge = kind, edge
        self.space = first.space
        self.operations = first.operations
        self.edges = first.edges
        self.skip_op = first.skip_op
        self.parameter_free_ops = first.parameter_free_ops

    def owner(self, path: Path) -> int:
        """The part that owns a single path (its operation index on the split edge)."""
        index = path[self.kind].index
        if index is None:
            raise ArchsearchError("a split supernet computes single paths only")
        return int(index[self.edge])

    def forward(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        return self.parts[self.owner(path)](x, path)

    def path_module(self, path: Path) -> Supernet:
        return self.parts[self.owner(path)]

    def arch_parameters(self) -> list[nn.Parameter]:
        return [p for part in self.parts for p in part.arch_parameters()]

    def softmax_weights(self) -> dict[str, torch.Tensor]:
        raise ArchsearchError("a split supernet has no architecture distribution of its own")

    def path_of(self, arch: Architecture) -> dict[str, EdgeChoice]:
        return self.parts[0].path_of(arch)

    def derive(self, weights: Mapping[str, np.ndarray]) -> Architecture:
        return self.parts[0].derive(weights)

    def counted_operations(self, arch: Architecture) -> list[str]:
        return self.parts[0].counted_operations(arch)

    def config(self) -> dict[str, Any]:
        return {"name": "split", "kind": self.kind, "edge": self.edge,
                "part": self.parts[0].config()}  # fmt: skip


def fix_edge(path: Path, kind: str, edge: int, op: int) -> dict[str, EdgeChoice]:
    """``path`` with operation ``op`` on edge ``edge`` of cell kind ``kind``."""
    index = list(path[kind].index)
    index[edge] = op
    return {**path, kind: EdgeChoice(weights=path[kind].weights, index=index)}
