"""Pictures of what a study found, as matplotlib figures (``archsearch plot`` and the
HTML report draw the same ones).

* ``pareto``: one panel per pair of declared objectives, every evaluated architecture with
  the Pareto front marked, so a user sees the trade-off a search offers before choosing a
  member to export (``archsearch export --pick``);
* ``trajectory``: the primary objective of each evaluation and the best so far, against the
  number of evaluations and against the evaluation time spent;
* ``importance``: each decision's share of the objective's variance
  (:mod:`archsearch.study.importance`).

matplotlib is an optional dependency (the ``plot`` extra): a study runs without it.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from archsearch.checks import check_output_file
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


KINDS = ("pareto", "trajectory", "importance")


def plot_study(study: Study, to: str | Path, kind: str | None = None) -> Path:
    """Write the study's picture of ``kind`` to ``to`` (PNG, or any format matplotlib
    infers); by default the front of a multi-objective study, else the trajectory."""
    to = check_output_file(to, "--to", make_parents=False)
    figure = draw(study, kind)
    try:
        figure.savefig(to, dpi=120)
    except OSError as exc:
        raise ArchsearchError(f"cannot write {to}: {exc.strerror}") from None
    finally:
        _pyplot().close(figure)
    return to


def draw(study: Study, kind: str | None = None):  # -> matplotlib.figure.Figure
    """The study's figure of ``kind`` (one of :data:`KINDS`)."""
    if kind is None:
        kind = "pareto" if len(study.declaration.objectives) > 1 else "trajectory"
    if kind not in KINDS:
        raise ArchsearchError(f"unknown plot kind {kind!r}; known: {', '.join(KINDS)}")
    if not any(t.status == "complete" for t in study.trials):
        raise ArchsearchError(f"study in {study.directory} has no completed evaluation to plot")
    plt = _pyplot()
    figure = {"pareto": _pareto, "trajectory": _trajectory, "importance": _importance}[kind](
        plt, study
    )
    figure.tight_layout()
    return figure


def importance_inputs(study: Study) -> tuple[list, list[float]]:
    """The feasible evaluated architectures of ``study`` (each once) and their oriented
    primary objective: what :func:`archsearch.study.importance.decision_importance` reads."""
    from archsearch.study.rules import study_rows

    archs, vectors, feasible = study_rows(study)
    kept = [(a, v[0]) for a, v, ok in zip(archs, vectors, feasible, strict=True) if ok]
    return [a for a, _ in kept], [v for _, v in kept]


def importance_figure(plt, found: list, count: int, study: Study):
    """A bar per decision of its share of the variance, ``found`` as
    :func:`~archsearch.study.importance.decision_importance` returns it over ``count``
    architectures."""
    figure, ax = plt.subplots(figsize=(6, 0.35 * len(found) + 1.5))
    ax.barh([i.decision for i in found][::-1], [i.share for i in found][::-1], color="tab:blue")
    primary = study.declaration.primary
    ax.set_xlabel(f"share of the variance of {primary.name} (epsilon squared)")
    ax.set_title(f"which decisions matter: {count} feasible evaluated architectures")
    return figure


def _title(study: Study, done: int) -> str:
    config = study.config
    return f"{config['strategy']['name']} on {config['space']['name']}: {done} evaluated"


def _pareto(plt, study: Study):
    objectives = study.declaration.objectives
    done = [t for t in study.trials if t.status == "complete"]
    pairs = list(itertools.combinations(range(len(objectives)), 2))
    if not pairs:
        return _trajectory(plt, study)
    columns = min(len(pairs), 3)
    rows = math.ceil(len(pairs) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
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
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    figure.suptitle(_title(study, len(done)))
    return figure


def _trajectory(plt, study: Study):
    """Against evaluations and against evaluation time: a strategy that proposes well but
    slowly (a model refit per ask) looks better on the first than on the second."""
    rows = study.trajectory()
    by_number = {t.number: t for t in study.trials}
    spent = np.cumsum([_duration(by_number[r["trial"]]) for r in rows])
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
    primary = study.declaration.primary
    for ax, xs, label in (
        (axes[0][0], [r["evaluations"] for r in rows], "evaluations"),
        (axes[0][1], spent, "evaluation time (s)"),
    ):
        done = [(x, r["objective"]) for x, r in zip(xs, rows, strict=True)
                if r["objective"] is not None]  # fmt: skip
        if done:
            ax.scatter(*zip(*done, strict=True), c="0.6", s=12, label="evaluated")
        best = [(x, r["best_objective"]) for x, r in zip(xs, rows, strict=True)
                if r["best_objective"] is not None]  # fmt: skip
        if best:
            ax.step(*zip(*best, strict=True), where="post", c="tab:blue", label="best so far")
        ax.set_xlabel(label)
        ax.set_ylabel(f"{primary.name} ({primary.direction})")
        ax.legend(fontsize=8)
    figure.suptitle(_title(study, len(rows)))
    return figure


def _duration(trial) -> float:
    if trial.finished is None or trial.started is None:
        return 0.0
    return max(0.0, trial.finished - trial.started)


def _importance(plt, study: Study):
    from archsearch.study.importance import decision_importance

    archs, scores = importance_inputs(study)
    return importance_figure(
        plt, decision_importance(study.space, archs, scores), len(archs), study
    )
