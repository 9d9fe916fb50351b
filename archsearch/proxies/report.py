"""The diagnostics table for estimators: ranking quality beside size bias.

Every row is one estimator (a proxy, a combination, a predictor or a supernet: anything that
gives a higher-is-better score per architecture) diagnosed with
:func:`archsearch.diagnostics.ranking_report` against the ground truth, plus its *bias*:
Spearman's rho with #params and with FLOPs. A proxy that only rediscovers model size shows
rho near 1 with both, and then adds nothing over the ``params`` and ``flops`` rows that the
table always carries as baselines.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from archsearch.diagnostics import ranking_report, spearman_rho

#: columns of the printed table, in order (the CSV holds every column)
SHOWN = (
    ("estimator", "estimator", "{}"),
    ("n", "n", "{}"),
    ("spearman", "rho", "{:.3f}"),
    ("kendall", "tau", "{:.3f}"),
    ("spearman_top10", "rho@10%", "{:.3f}"),
    ("spearman_top5", "rho@5%", "{:.3f}"),
    ("precision_top10", "P@10%", "{:.2f}"),
    ("precision_top5", "P@5%", "{:.2f}"),
    ("best_true_rank", "best", "{}"),
    ("worst_true_rank", "worst", "{}"),
    ("spearman_params", "rho(params)", "{:.3f}"),
    ("spearman_flops", "rho(flops)", "{:.3f}"),
    ("seconds", "s/arch", "{:.3f}"),
)


def orderable(values: Sequence[float]) -> np.ndarray:
    """Scores with infinities replaced by finite values just outside the finite range.

    Proxies score a network that ignores its input ``-inf`` (predicted worst); the ranking
    metrics drop non-finite values, which would silently remove those networks. Mapping the
    infinities to the ends of the scale keeps them ranked; ``nan`` (not scored) stays ``nan``.
    """
    v = np.asarray(values, dtype=float).copy()
    finite = np.isfinite(v)
    low = v[finite].min() if finite.any() else 0.0
    high = v[finite].max() if finite.any() else 0.0
    span = max(high - low, 1.0)
    v[v == -math.inf] = low - span
    v[v == math.inf] = high + span
    return v


def diagnose_estimators(
    scores: Mapping[str, Sequence[float]],
    truth: Sequence[float],
    *,
    params: Sequence[float],
    flops: Sequence[float],
    top_k: int = 10,
    seconds: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """One row per estimator: :func:`ranking_report` against ``truth`` and the size bias.

    ``params`` and ``flops`` of the same architectures; ``seconds`` optionally the mean time
    per architecture of each estimator. ``best_true_rank``/``worst_true_rank`` are the best
    and worst true rank (1 = best) among the estimator's top ``top_k``.
    """
    truth = np.asarray(truth, dtype=float)
    rows = []
    with warnings.catch_warnings():
        # a constant score (e.g. a proxy that cannot tell a sample apart) has no correlation;
        # the table shows it as "-", which says so without a warning per row
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        for name, raw in scores.items():
            rows.append(_row(name, raw, truth, params, flops, top_k, seconds))
    return rows


def _row(
    name: str,
    raw: Sequence[float],
    truth: np.ndarray,
    params: Sequence[float],
    flops: Sequence[float],
    top_k: int,
    seconds: Mapping[str, float] | None,
) -> dict[str, Any]:
    """One row of :func:`diagnose_estimators`."""
    s = orderable(raw)
    k = max(1, min(top_k, int(np.isfinite(s).sum())))
    report = ranking_report(s, truth, top_k=k)
    row: dict[str, Any] = {"estimator": name, "n": int(np.isfinite(s).sum())}
    row.update(
        {
            k_: v
            for k_, v in report.items()
            if not k_.startswith(("best_true_rank", "worst_true_rank"))
        }
    )
    row["best_true_rank"] = report[f"best_true_rank_top{k}"]
    row["worst_true_rank"] = report[f"worst_true_rank_top{k}"]
    row["top_k"] = k
    row["spearman_params"] = spearman_rho(s, params)
    row["spearman_flops"] = spearman_rho(s, flops)
    row["seconds"] = (seconds or {}).get(name, math.nan)
    return row


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as an aligned text table (the columns of :data:`SHOWN`)."""
    header = [title for _, title, _ in SHOWN]
    body = []
    for row in rows:
        cells = []
        for key, _, fmt in SHOWN:
            value = row.get(key, "")
            if isinstance(value, float) and not math.isfinite(value):
                cells.append("-")
            else:
                cells.append(fmt.format(value))
        body.append(cells)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *body]
    ]
    return "\n".join(lines)


def write_rows_csv(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write dict rows as CSV, columns in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
