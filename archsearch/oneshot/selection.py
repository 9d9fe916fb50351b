"""Perturbation-based architecture selection (Wang et al., "Rethinking Architecture
Selection in Differentiable NAS", ICLR 2021, Algorithm 1).

The magnitude of alpha need not say how much an operation matters to the supernet: skip
connections gain large alphas exactly when the supernet leans on them least (the paper's
Sec. 3). Instead, visit the edges in random order; on each, remove one operation at a time
(its weight set to zero, the others left as they are) and keep the operation whose removal
lowers the supernet's validation accuracy most; the edge then holds that operation alone.
Optionally fine-tune the supernet weights for a few steps after each decision. In the DARTS
space the topology is chosen the same way afterwards: per node, the two input edges whose
removal hurts most are kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from archsearch.oneshot.base import _Mean
from archsearch.oneshot.supernet import darts_edges
from archsearch.space import darts as darts_space
from archsearch.space.base import Architecture

if TYPE_CHECKING:
    from archsearch.oneshot.differentiable import AlphaMethod


def perturbation_selection(
    method: AlphaMethod, tune_steps: int = 0
) -> tuple[Architecture, list[dict[str, Any]]]:
    """Select an architecture by perturbation from ``method``'s trained supernet.

    Accuracy is measured on the method's validation split (``eval_size`` images) with BN on
    batch statistics. Returns the architecture and one trace entry per decision.
    """
    net = method.net
    device = method.runtime.device
    weights = {
        k: torch.tensor(p, device=device, dtype=torch.float32)
        for k, p in net.probabilities().items()
    }
    none = net.operations.index("none")
    darts = net.space.name == "darts"
    trace: list[dict[str, Any]] = []

    def accuracy(w: dict[str, torch.Tensor]) -> float:
        path = net.relaxed_path(w)
        return method.path_accuracy(lambda: path)[1]

    def tune() -> None:
        if tune_steps <= 0:
            return
        meter = _Mean()
        path = net.relaxed_path(weights)
        for step, (x, y) in enumerate(method.train_batches()):
            if step >= tune_steps:
                break
            method.weight_step(x, y, path, meter)

    edges = [(kind, e) for kind in net.kinds for e in range(len(net.edges[kind]))]
    for position in method.rng.permutation(len(edges)):
        kind, e = edges[int(position)]
        candidates = [k for k in range(len(net.operations)) if not (darts and k == none)]
        scores = {}
        for k in candidates:
            trial = {name: w.clone() for name, w in weights.items()}
            trial[kind][e, k] = 0.0
            scores[net.operations[k]] = accuracy(trial)
        chosen = min(scores, key=lambda op: (scores[op], net.operations.index(op)))
        weights[kind][e] = 0.0
        weights[kind][e, net.operations.index(chosen)] = 1.0
        trace.append({"edge": f"{kind}:{net.edges[kind][e]}", "op": chosen, "acc_without": scores})
        tune()

    if darts:
        edge_index = {(n, i): r for r, (n, i) in enumerate(darts_edges())}
        nodes = [(kind, n) for kind in net.kinds for n in darts_space.NODES]
        for position in method.rng.permutation(len(nodes)):
            kind, n = nodes[int(position)]
            scores = {}
            for i in range(n):
                trial = {name: w.clone() for name, w in weights.items()}
                trial[kind][edge_index[(n, i)]] = 0.0
                scores[i] = accuracy(trial)
            keep = sorted(sorted(scores, key=lambda i: (scores[i], i))[:2])
            for i in range(n):
                if i not in keep:
                    weights[kind][edge_index[(n, i)]] = 0.0
            trace.append({"node": f"{kind}:n{n}", "inputs": keep, "acc_without": scores})
            tune()

    final = {k: w.cpu().numpy() for k, w in weights.items()}
    return net.derive(final), trace
