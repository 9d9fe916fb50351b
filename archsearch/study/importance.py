"""Which decisions matter: the share of the objective's variance each decision explains.

The question "which decisions' choices matter" is answered in the field by functional
ANOVA (fANOVA, Hutter et al., ICML 2014): the variance of the objective over the space is
split into the parts explained by each decision alone, by each pair, and so on. Here the
first-order parts are estimated directly from the evaluated architectures, one decision at
a time, as a one-way analysis of variance would: the objective's variance between the
groups of architectures that share the decision's choice, over its total variance.

The plain ratio (eta squared) grows with the number of choices even when a decision does
nothing, because every group mean carries sampling noise; a study of 50 evaluations would
credit a 5-choice decision with ~8% for free. Epsilon squared (Kelley 1935) subtracts the
share noise alone would explain, so an irrelevant decision scores ~0 (clipped at 0).

A search samples where it expects good architectures, not uniformly, so the figures
describe the evaluated architectures: a decision the search settled early (every later
candidate shares its choice) explains little of *their* variance. The report says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space.base import Choice, SearchSpace


@dataclass(frozen=True)
class Importance:
    """One decision's first-order share of the objective's variance, and the choice whose
    architectures did best on average (with how many architectures made that choice)."""

    decision: str
    share: float
    best_choice: Choice
    best_mean: float
    best_count: int


def decision_importance(
    space: SearchSpace, archs: Sequence[Mapping[str, Choice]], scores: Sequence[float]
) -> list[Importance]:
    """Every decision's importance over ``archs`` scored ``scores`` (higher is better),
    the most important first; see the module docstring for the estimate."""
    y = np.asarray(scores, dtype=float)
    if len(y) != len(archs):
        raise ArchsearchError(f"{len(archs)} architectures but {len(y)} scores")
    if len(y) < 3 or not np.isfinite(y).all():
        raise ArchsearchError("importance needs at least 3 finite scores")
    total = float(((y - y.mean()) ** 2).sum())
    found = []
    for decision in space.decisions:
        index = np.array([decision.index(a[decision.label]) for a in archs])
        groups = [y[index == c] for c in np.unique(index)]
        between = sum(len(g) * (g.mean() - y.mean()) ** 2 for g in groups)
        k, n = len(groups), len(y)
        within_mean_square = (total - between) / (n - k) if n > k else 0.0
        share = 0.0
        if total > 0 and k > 1:
            share = max(0.0, (between - (k - 1) * within_mean_square) / total)
        best = max(range(len(groups)), key=lambda g: (groups[g].mean(), -g))
        found.append(
            Importance(
                decision=decision.label,
                share=float(share),
                best_choice=decision.choices[int(np.unique(index)[best])],
                best_mean=float(groups[best].mean()),
                best_count=len(groups[best]),
            )
        )
    return sorted(found, key=lambda i: -i.share)
