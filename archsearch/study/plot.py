"""A picture of what a study found: every evaluated architecture, its Pareto front marked.

One panel per pair of declared objectives (a single-objective study gets its objective
against the evaluation number, with the best so far), so a user sees the trade-off a
search offers before choosing a member to export (``archsearch export --pick``).
matplotlib is an optional dependency (the ``plot`` extra): a study runs without it.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING

from archsearch.errors import ArchsearchError

if TYPE_CHECKING:
    from archsearch.study.study import Study


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ArchsearchError("plotting needs matplotlib: pip install 'archsearch[plot]'") from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_study(study: Study, to: str | Path) -> Path:
    """Write the study's picture to ``to`` (PNG, or any format matplotlib infers)."""
    to = Path(to)
    if not to.parent.is_dir():
        raise ArchsearchError(f"cannot write {to}: {to.parent} is not a directory")
    plt = _pyplot()
    objectives = study.declaration.objectives
    done = [t for t in study.trials if t.status == "complete"]
    if not done:
        raise ArchsearchError(f"study in {study.directory} has no completed evaluation to plot")
    pairs = list(itertools.combinations(range(len(objectives)), 2))
    columns = min(len(pairs), 3) or 1
    rows = math.ceil(max(len(pairs), 1) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    if not pairs:
        _plot_trajectory(axes[0][0], study)
    front = {t.number for t in study.pareto_front()}
    for ax, (i, j) in zip(axes.flat, pairs, strict=False):
        x, y = objectives[i], objectives[j]
        for subset, style in (
            ([t for t in done if t.feasible is not False], {"c": "0.6", "s": 12}),
            ([t for t in done if t.feasible is False], {"c": "tab:red", "marker": "x", "s": 14}),
        ):
            if subset:
                label = "infeasible" if style.get("marker") else "evaluated"
                xs = [t.values[x.name] for t in subset]
                ax.scatter(xs, [t.values[y.name] for t in subset], label=label, **style)
        members = sorted(
            (t for t in done if t.number in front), key=lambda t: x.oriented(t.values[x.name])
        )
        ax.scatter(
            [t.values[x.name] for t in members], [t.values[y.name] for t in members],
            c="tab:blue", s=28, label=f"Pareto front ({len(members)})", zorder=3,
        )  # fmt: skip
        if len(objectives) == 2 and members:  # a two-objective front is a curve: join it
            ax.plot(
                [t.values[x.name] for t in members], [t.values[y.name] for t in members],
                c="tab:blue", lw=1, zorder=2,
            )  # fmt: skip
        ax.set_xlabel(f"{x.name} ({x.direction})")
        ax.set_ylabel(f"{y.name} ({y.direction})")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[max(len(pairs), 1) :]:
        ax.set_visible(False)
    figure.suptitle(f"{study.config['strategy']['name']} on {study.config['space']['name']}: "
                    f"{len(done)} evaluated")  # fmt: skip
    figure.tight_layout()
    try:
        figure.savefig(to, dpi=120)
    except OSError as exc:
        raise ArchsearchError(f"cannot write {to}: {exc.strerror}") from None
    finally:
        plt.close(figure)
    return to


def _plot_trajectory(ax, study: Study) -> None:
    rows = study.trajectory()
    ax.scatter(
        [r["evaluations"] for r in rows], [r["objective"] for r in rows], c="0.6", s=12,
        label="evaluated",
    )  # fmt: skip
    ax.step(
        [r["evaluations"] for r in rows], [r["best_objective"] for r in rows], where="post",
        c="tab:blue", label="best so far",
    )  # fmt: skip
    primary = study.declaration.primary
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"{primary.name} ({primary.direction})")
    ax.legend(fontsize=8)
