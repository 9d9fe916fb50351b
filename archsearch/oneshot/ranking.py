"""How well a supernet ranks architectures: inherited-weight accuracy against ground truth.

Weight sharing trains every path a little and none fully, which can scramble the order of
architectures (Yu et al., ICLR 2020; Zhang et al., ICML 2020). The check is the one used for
zero-cost proxies and predictors: score every architecture of a ground-truth table with the
supernet and compare with :func:`archsearch.diagnostics.ranking_report` (Kendall's tau over
all of them, precision in the true top 5%, ...).

A searched architecture is judged the same way against the table: :func:`table_truth` gives
its true accuracy (the table's row, or the architecture retrained with the table's own
recipe and seed rule when the table lacks it) and its place among the table's rows, and
:func:`table_noise` retrains some rows with another seed to show how far the table itself
can be trusted.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from archsearch.diagnostics import rank_in_table, ranking_report, seed_noise
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


def table_truth(
    arch: Architecture,
    table: Any,
    *,
    seed_offset: int = 0,
    force: bool = False,
    known: dict[str, Any] | None = None,
    columns: tuple[str, str] = ("fmnist_valid", "fmnist_test"),
) -> dict[str, Any]:
    """The true validation and test accuracy of ``arch`` and its rank in ``table``.

    The table's row when the table holds ``arch`` (and not ``force``); otherwise ``known``
    (an earlier call's answer, to re-rank against a grown table without retraining), or
    ``arch`` retrained from scratch with the table's recipe and its seed rule (seed = the
    NAS-Bench-201 index + ``seed_offset``), so the figure is what the table would hold.
    ``valid_rank``/``test_rank`` are :func:`archsearch.diagnostics.rank_in_table`.
    """
    valid, test = table.column(columns[0]), table.column(columns[1])
    if arch in table and not force:
        row = table.position(arch)
        found = {"source": "table", "valid": float(valid[row]), "test": float(test[row])}
        if known is not None:
            found = {**known, **found}
    elif known is not None:
        found = dict(known)
    else:
        from archsearch.components import build_space
        from archsearch.oneshot.pipeline import retrain

        space = build_space(table.recipe["space"])
        recipe = {k: v for k, v in table.recipe["evaluator"].items() if k != "name"}
        seed = space.index(arch) + seed_offset  # the table trains each row with its index
        started = time.perf_counter()
        result, _ = retrain(arch, space, recipe, seed=seed)
        found = {
            "source": f"retrained (seed {seed}, {time.perf_counter() - started:.0f} s)",
            "valid": round(result.values["valid_accuracy"], 3),
            "test": round(result.values["test_accuracy"], 3),
        }
    found["valid_rank"] = rank_in_table(valid, found["valid"])
    found["test_rank"] = rank_in_table(test, found["test"])
    return found


def table_noise(
    table: Any,
    count: int,
    seed: int = 0,
    columns: tuple[str, str] = ("fmnist_valid", "fmnist_test"),
) -> dict[str, Any]:
    """How reproducible ``table`` is: ``count`` seeded-random rows retrained with seed =
    index + 1 (:func:`table_truth` with ``force``), their ``columns[0]`` compared with
    the table's by :func:`archsearch.diagnostics.seed_noise`.

    Costs ``count`` trainings with the table's recipe (about 10 CPU seconds each for the
    ``cpu`` recipe).
    """
    rows = np.random.default_rng(seed).permutation(len(table))[:count]
    archs = table.architectures()
    first = table.column(columns[0])[rows]
    second = [
        table_truth(archs[r], table, seed_offset=1, force=True, columns=columns)["valid"]
        for r in rows
    ]
    return seed_noise(first, second)
