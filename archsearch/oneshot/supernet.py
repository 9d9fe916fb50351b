"""Supernets: one network that holds every architecture of a cell space, with shared weights.

Every edge of a cell is a :class:`MixedOp` holding all candidate operations. How an edge is
computed in one forward pass is given by an :class:`EdgeChoice` per cell kind, which covers
the three ways one-shot methods use a supernet:

* **continuous relaxation** (DARTS, Liu et al. 2019, eq. 1): ``weights`` only; the edge
  outputs ``sum_k w_k * op_k(x)``, every operation runs;
* **hard Gumbel sample, straight-through** (GDAS, Dong & Yang 2019, eq. 5-7): ``weights``
  and ``index``; only ``op_index`` runs, its output is scaled by ``w_index`` (one in value),
  and the other ``w_k`` (zero in value) are added so that the gradient reaches every
  architecture parameter through the softmax;
* **single path** (SPOS, Guo et al. 2020; ENAS, Pham et al. 2018): ``index`` only; only the
  sampled operation runs, so activation memory does not grow with the number of operations.

The architecture parameters (``alphas``, one ``edges x operations`` matrix per cell kind) live
in the supernet; :meth:`Supernet.weight_parameters` and :meth:`Supernet.arch_parameters`
separate them for the bi-level optimisers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.oneshot.ops import NB201_OPS, ReLUConvBN, darts_search_op
from archsearch.space import darts as darts_space
from archsearch.space import nb201 as nb201_space
from archsearch.space.base import Architecture, SearchSpace
from archsearch.space.nb201_network import classify, nb201_skeleton


@dataclass(frozen=True)
class EdgeChoice:
    """How the edges of one cell kind are computed (see the module docstring).

    ``weights`` is an ``edges x operations`` tensor; ``index`` one operation per edge.
    """

    weights: torch.Tensor | None = None
    index: Sequence[int] | None = None

    def __post_init__(self) -> None:
        if self.weights is None and self.index is None:
            raise ValueError("an EdgeChoice needs weights, an index or both")


#: one EdgeChoice per cell kind of the supernet
Path = Mapping[str, EdgeChoice]


class MixedOp(nn.Module):
    """All candidate operations of one edge, sharing nothing but their input."""

    def __init__(self, ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor | None = None, index: int | None = None
    ) -> torch.Tensor:
        if index is None:  # continuous relaxation, DARTS eq. 1
            assert weights is not None
            out = weights[0] * self.ops[0](x)
            for k in range(1, len(self.ops)):
                out = out + weights[k] * self.ops[k](x)
            return out
        out = self.ops[index](x)
        if weights is None:  # single path
            return out
        # straight-through hard sample: forward value op_index(x), gradient to every weight
        out = out * weights[index]
        for k in range(len(self.ops)):
            if k != index:
                out = out + weights[k]
        return out


def _edge_args(choice: EdgeChoice, e: int) -> tuple[torch.Tensor | None, int | None]:
    weights = None if choice.weights is None else choice.weights[e]
    index = None if choice.index is None else int(choice.index[e])
    return weights, index


class Supernet(nn.Module):
    """Base of the supernets: architecture parameters and the discrete-space interface.

    Subclasses set ``space`` (the discrete space whose architectures the supernet holds),
    ``operations`` (the candidate operations in column order of the alphas), ``edges`` (per
    cell kind, the edge names in row order) and implement ``forward(x, path)``,
    :meth:`path_of` and :meth:`derive`.
    """

    space: SearchSpace
    operations: tuple[str, ...]
    edges: dict[str, tuple[str, ...]]
    #: the operation the collapse diagnostics count (DARTS+, Liang et al. 2019)
    skip_op = "skip_connect"
    #: operations without weights that still pass information on (``none`` cuts the edge
    #: instead); DARTS's collapse fills cells with them (Zela et al. 2020)
    parameter_free_ops: tuple[str, ...] = ()

    def _init_alphas(self) -> None:
        # DARTS initialises alphas at 1e-3 * N(0, 1): almost uniform, not exactly tied
        self.alphas = nn.ParameterDict({
            kind: nn.Parameter(1e-3 * torch.randn(len(edges), len(self.operations)))
            for kind, edges in self.edges.items()
        })  # fmt: skip

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.edges)

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def softmax_weights(self) -> dict[str, torch.Tensor]:
        return {kind: a.softmax(dim=-1) for kind, a in self.alphas.items()}

    def relaxed_path(self, weights: Mapping[str, torch.Tensor] | None = None) -> dict:
        """The continuous relaxation with the softmax of the alphas (or given weights)."""
        weights = self.softmax_weights() if weights is None else weights
        return {kind: EdgeChoice(weights=w) for kind, w in weights.items()}

    def probabilities(self) -> dict[str, np.ndarray]:
        """softmax(alpha) per cell kind as numpy arrays (for derivation and diagnostics)."""
        with torch.no_grad():
            return {k: w.detach().float().cpu().numpy() for k, w in self.softmax_weights().items()}

    def path_module(self, path: Path) -> Supernet:
        """The module whose weights a single path uses: the supernet itself, or the part of
        a split supernet that owns the path (so that scoring touches only it)."""
        return self

    # -------------------------------------------------------- discrete interface
    def path_of(self, arch: Architecture) -> dict[str, EdgeChoice]:
        """The single path that computes ``arch`` (one operation index per edge)."""
        raise NotImplementedError

    def derive(self, weights: Mapping[str, np.ndarray]) -> Architecture:
        """The discrete architecture that edge weights (e.g. softmax(alpha)) stand for."""
        raise NotImplementedError

    def counted_operations(self, arch: Architecture) -> list[str]:
        """The operations the collapse diagnostics look at (the normal cell in DARTS)."""
        raise NotImplementedError

    def skip_count(self, arch: Architecture) -> int:
        return self.counted_operations(arch).count(self.skip_op)

    def skip_share(self, arch: Architecture) -> float:
        """Share of the counted edges (see :meth:`counted_operations`) that are skips."""
        ops = self.counted_operations(arch)
        return ops.count(self.skip_op) / len(ops)

    def parameter_free_share(self, arch: Architecture) -> float:
        """Share of the counted edges that hold a skip connection or a pooling."""
        ops = self.counted_operations(arch)
        return sum(op in self.parameter_free_ops for op in ops) / len(ops)

    def one_hot(self, arch: Architecture) -> dict[str, np.ndarray]:
        """Edge weights that put all mass on ``arch``'s operations (``none`` off-path)."""
        result = {}
        for kind, choice in self.path_of(arch).items():
            w = np.zeros((len(self.edges[kind]), len(self.operations)), dtype=np.float32)
            w[np.arange(len(w)), list(choice.index)] = 1.0
            result[kind] = w
        return result

    def config(self) -> dict[str, Any]:
        raise NotImplementedError


# --------------------------------------------------------------------------- NB201
class NB201SearchCell(nn.Module):
    """The NAS-Bench-201 cell with a mixed operation on each of its six edges."""

    def __init__(self, channels: int, affine: bool) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            MixedOp([NB201_OPS[op](channels, 1, affine) for op in nb201_space.OPERATIONS])
            for _ in nb201_space.EDGES
        )

    def forward(self, x: torch.Tensor, choice: EdgeChoice) -> torch.Tensor:
        nodes = [x]
        e = 0
        for j in range(1, nb201_space.NUM_NODES):
            total = None
            for i in range(j):  # edges in the benchmark's order: (1,0), (2,0), (2,1), ...
                out = self.edges[e](nodes[i], *_edge_args(choice, e))
                total = out if total is None else total + out
                e += 1
            nodes.append(total)
        return nodes[-1]


class NB201Supernet(Supernet):
    """The NAS-Bench-201 skeleton (:func:`~archsearch.space.nb201_network.nb201_skeleton`)
    with search cells.

    ``affine=False`` drops the BN scale and shift inside the candidate operations, as the
    benchmark's DARTS and GDAS search models do, so that an operation cannot rescale itself
    against its architecture weight.
    """

    parameter_free_ops = ("skip_connect", "avg_pool_3x3")

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 16,
        cells_per_stage: int = 5,
        affine: bool = False,
    ) -> None:
        super().__init__()
        self.space = nb201_space.NB201Space(channels, cells_per_stage)
        self.operations = nb201_space.OPERATIONS
        self.edges = {"cell": tuple(nb201_space.edge_label(j, i) for j, i in nb201_space.EDGES)}
        self._config = {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "channels": channels,
            "cells_per_stage": cells_per_stage,
            "affine": affine,
        }
        parts = nb201_skeleton(
            in_channels,
            num_classes,
            lambda width: NB201SearchCell(width, affine),
            channels=channels,
            cells_per_stage=cells_per_stage,
        )
        self.stem = parts.stem
        self.layers = nn.ModuleList(parts.layers)
        self.lastact = parts.lastact
        self.pool = parts.pool
        self.classifier = parts.classifier
        self._init_alphas()

    def forward(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        choice = path["cell"]
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, choice) if isinstance(layer, NB201SearchCell) else layer(x)
        return classify(x, self.lastact, self.pool, self.classifier)

    def path_of(self, arch: Architecture) -> dict[str, EdgeChoice]:
        ops = self.operations
        return {"cell": EdgeChoice(index=[ops.index(str(arch[e])) for e in self.edges["cell"]])}

    def derive(self, weights: Mapping[str, np.ndarray]) -> Architecture:
        """Argmax per edge over all five operations, as NAS-Bench-201 derives DARTS cells."""
        w = np.asarray(weights["cell"])
        return self.space.make({
            e: self.operations[int(np.argmax(w[k]))] for k, e in enumerate(self.edges["cell"])
        })  # fmt: skip

    def counted_operations(self, arch: Architecture) -> list[str]:
        return [arch[e] for e in self.edges["cell"]]

    def config(self) -> dict[str, Any]:
        return {"name": "nb201", **self._config}


# --------------------------------------------------------------------------- DARTS
def darts_edges() -> tuple[tuple[int, int], ...]:
    """(node, input) of the 14 edges of a DARTS search cell, node-major as in the paper."""
    return tuple((n, i) for n in darts_space.NODES for i in range(n))


class DARTSSearchCell(nn.Module):
    """A DARTS cell in which every node takes a mixed operation from every earlier node."""

    def __init__(
        self, c_prev_prev: int, c_prev: int, c: int, reduction: bool, reduction_prev: bool
    ) -> None:
        super().__init__()
        from archsearch.oneshot.ops import FactorizedReduce

        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, c, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            MixedOp([
                darts_search_op(op, c, 2 if reduction and i < 2 else 1, False)
                for op in darts_space.PRIMITIVES
            ])
            for _, i in darts_edges()
        )  # fmt: skip

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, choice: EdgeChoice) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        e = 0
        for n in darts_space.NODES:
            total = None
            for i in range(n):
                out = self.edges[e](states[i], *_edge_args(choice, e))
                total = out if total is None else total + out
                e += 1
            states.append(total)
        return torch.cat(states[2:], dim=1)


class DARTSSupernet(Supernet):
    """The DARTS search network (``model_search.Network`` of Liu et al. 2019).

    Normal and reduction cells have their own alphas (14 edges x 8 operations each). The
    operations' BN layers have no affine parameters, as in the paper's search model.
    """

    parameter_free_ops = ("skip_connect", "max_pool_3x3", "avg_pool_3x3")

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 16,
        layers: int = 8,
    ) -> None:
        super().__init__()
        from archsearch.oneshot.darts_network import stacked_cells

        self.space = darts_space.DARTSSpace(channels, layers)
        self.operations = darts_space.PRIMITIVES
        names = tuple(f"n{n}<-{i}" for n, i in darts_edges())
        self.edges = {"normal": names, "reduce": names}
        self._config = {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "channels": channels,
            "layers": layers,
        }
        self.stem, self.cells, c_prev = stacked_cells(
            in_channels, channels, layers, DARTSSearchCell
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self._init_alphas()

    def forward(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            choice = path["reduce" if cell.reduction else "normal"]
            s0, s1 = s1, cell(s0, s1, choice)
        return self.classifier(torch.flatten(self.pool(s1), 1))

    def path_of(self, arch: Architecture) -> dict[str, EdgeChoice]:
        """Each node's two chosen edges carry their operations; every other edge is
        ``none``, so a discrete DARTS cell runs as a single path of the supernet."""
        edges = darts_edges()
        result = {}
        for kind in self.kinds:
            index = [0] * len(edges)  # PRIMITIVES[0] == "none"
            for n in darts_space.NODES:
                for k in (0, 1):
                    src = int(arch[darts_space.label(kind, n, f"in{k}")])
                    op = str(arch[darts_space.label(kind, n, f"op{k}")])
                    index[edges.index((n, src))] = self.operations.index(op)
            result[kind] = EdgeChoice(index=index)
        return result

    def derive(self, weights: Mapping[str, np.ndarray]) -> Architecture:
        """DARTS's rule (Liu et al. 2019, Sec. 2.4): per node, keep the two inputs whose
        strongest non-``none`` operation weighs most, each with that operation."""
        edges = darts_edges()
        none = self.operations.index("none")
        assignment: dict[str, Any] = {}
        for kind in self.kinds:
            w = np.array(weights[kind], dtype=float)
            w[:, none] = -np.inf
            for n in darts_space.NODES:
                rows = [edges.index((n, i)) for i in range(n)]
                strength = [w[r].max() for r in rows]
                top = sorted(np.argsort(-np.asarray(strength), kind="stable")[:2])
                for k, i in enumerate(top):
                    assignment[darts_space.label(kind, n, f"in{k}")] = int(i)
                    op = self.operations[int(np.argmax(w[rows[i]]))]
                    assignment[darts_space.label(kind, n, f"op{k}")] = op
        return self.space.make(assignment)

    def counted_operations(self, arch: Architecture) -> list[str]:
        """The normal cell's eight operations: DARTS+ stops the search at two skips."""
        return [
            arch[darts_space.label("normal", node, f"op{k}")]
            for node in darts_space.NODES
            for k in (0, 1)
        ]

    def config(self) -> dict[str, Any]:
        return {"name": "darts", **self._config}


def build_supernet(
    space: SearchSpace | str,
    input_shape: Sequence[int],
    num_classes: int,
    **options: Any,
) -> Supernet:
    """The supernet of a space (``nb201``, ``darts`` or ``mobilenet``), sized like the
    space's network.

    ``options`` override the size (``channels``, ``cells_per_stage`` / ``layers``; for
    ``mobilenet`` the space's options and the supernet's ``width``); by default the sizes
    come from ``space`` when a space object is given. A ``mobilenet`` supernet plans its
    strides for ``input_shape``'s side (or a stored ``input_size``).
    """
    name = space if isinstance(space, str) else space.name
    sizes: dict[str, Any] = {} if isinstance(space, str) else dict(space.config())
    sizes.pop("name", None)
    sizes.update(options)
    in_channels = int(input_shape[0])
    try:
        if name == "nb201":
            return NB201Supernet(in_channels, num_classes, **sizes)
        if name == "darts":
            return DARTSSupernet(in_channels, num_classes, **sizes)
        if name == "mobilenet":
            from archsearch.oneshot.mobile_supernet import MobileNetSupernet

            size = sizes.pop("input_size", None) or tuple(input_shape[1:])
            return MobileNetSupernet(in_channels, num_classes, size, **sizes)
    except TypeError as exc:
        raise ArchsearchError(f"bad supernet options for space {name!r}: {exc}") from None
    raise ArchsearchError(
        f"no supernet for space {name!r}; supernets exist for: darts, mobilenet, nb201"
    )


def supernet_from_config(config: Mapping[str, Any]) -> Supernet:
    """Rebuild a supernet from :meth:`Supernet.config` (checkpoints store it)."""
    options = dict(config)
    name = options.pop("name")
    if name == "split":
        from archsearch.oneshot.few_shot import SplitSupernet

        first = supernet_from_config(options["part"])
        rest = [supernet_from_config(options["part"]) for _ in first.operations[1:]]
        return SplitSupernet([first, *rest], options["kind"], options["edge"])
    in_channels = options.pop("in_channels")
    num_classes = options.pop("num_classes")
    return build_supernet(name, (in_channels,), num_classes, **options)
