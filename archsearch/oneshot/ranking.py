"""How well a supernet ranks architectures: inherited-weight accuracy against ground truth.

Weight sharing trains every path a little and none fully, which can scramble the order of
architectures (Yu et al., ICLR 2020; Zhang et al., ICML 2020). The check is the one used for
zero-cost proxies and predictors: score every architecture of a ground-truth table with the
supernet and compare with :func:`archsearch.diagnostics.ranking_report` (Kendall's tau over
all of them, precision in the true top 5%, ...).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from archsearch.diagnostics import ranking_report
from archsearch.oneshot.evaluator import InheritedWeights
from archsearch.space.base import Architecture


def supernet_ranking(
    scorer: InheritedWeights,
    archs: list[Architecture],
    truth: np.ndarray,
    top_k: int = 10,
) -> tuple[dict[str, Any], np.ndarray]:
    """The ranking report of ``scorer`` on ``archs`` against ``truth`` (same order), and the
    inherited-weight accuracies themselves."""
    if len(archs) != len(truth):
        raise ValueError(f"{len(archs)} architectures but {len(truth)} true accuracies")
    started = time.perf_counter()
    estimates = np.array([scorer.score(a)[0] for a in archs])
    report: dict[str, Any] = {"n": len(archs), **ranking_report(estimates, truth, top_k=top_k)}
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report, estimates


def table_ranking(
    scorer: InheritedWeights, table: Any, column: str = "fmnist_valid", limit: int | None = None
) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`supernet_ranking` on the rows of a Fashion-MNIST table
    (:func:`archsearch.tables.fmnist.load_fmnist_table`), or its first ``limit`` rows."""
    archs = table.architectures()[:limit]
    truth = np.asarray(table.column(column))[: len(archs)]
    return supernet_ranking(scorer, archs, truth)
