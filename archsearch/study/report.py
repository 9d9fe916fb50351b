"""``archsearch report``: one self-contained HTML page that shows what a study did and found.

A study is a file people send each other, so the page is built to be opened anywhere and
trusted: no network, no CDN and no script (figures are inline SVG drawn by matplotlib, the
style sheet is inline), and every string that comes from the study file is HTML-escaped.
It holds the configuration and budget, the trajectory against evaluations and time, the
Pareto front of a multi-objective study, the best architecture drawn (a cell as its DAG,
any other space as its table of decisions), the top architectures with every value, which
decisions matter (:mod:`archsearch.study.importance`), the choice rules
(:mod:`archsearch.study.rules`), the failed and refused trials with their reasons, and for
a one-shot search its per-epoch diagnostics.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch.checks import check_output_file
from archsearch.errors import ArchsearchError

if TYPE_CHECKING:
    from archsearch.study.study import Study

#: rows of the top-architectures table
TOP_K = 10
#: the per-epoch one-shot figures worth a column, in this order, when recorded
ONESHOT_COLUMNS = (
    "epoch", "train_loss", "valid_loss", "valid_accuracy", "entropy", "skip_share",
    "parameter_free_share", "seconds",
)  # fmt: skip
#: a cell space's decision labels read "to<-from"
EDGE_LABEL = re.compile(r"^(\d+)<-(\d+)$")

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1d2433;background:#fff;line-height:1.4;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #dde;padding-bottom:.2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #dde;padding:.2rem .5rem;text-align:left}
th{background:#f3f5fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#667}.figure svg{max-width:100%;height:auto}code{font-size:.85rem}
.wide{overflow-x:auto}.facts td:first-child{font-weight:600;background:#f8f9fc}
"""


def write_report(study: Study, to: str | Path) -> Path:
    """Write the study's report to ``to`` (checked writable before any work is done)."""
    to = check_output_file(to, "--to", make_parents=False)
    page = render(study)
    try:
        to.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ArchsearchError(f"cannot write {to}: {exc.strerror}") from None
    return to


def render(study: Study) -> str:
    """The report of ``study`` as one HTML document."""
    summary = study.summary()
    config = summary["config"]
    title = f"{config['strategy']['name']} on {config['space']['name']}"
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p class=muted>study in <code>{_e(study.directory)}</code>; report written "
        f"{_e(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}</p>",
        _section("Configuration", _facts(_configuration(summary))),
        *_results(study, summary),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>archsearch: {_e(title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


# -------------------------------------------------------------------------- sections
def _results(study: Study, summary: dict[str, Any]) -> list[str]:
    done = [t for t in study.trials if t.status == "complete"]
    parts = []
    if done:
        parts.append(_section("Trajectory", _figure(study, "trajectory")))
        if len(study.declaration.objectives) > 1:
            parts.append(_section("Pareto front", _pareto(study, summary)))
        best = study.best
        if best is not None:
            parts.append(_section("Best architecture", _best(study, best)))
        parts.append(_section(f"Top {min(TOP_K, len(done))} architectures", _top(study, done)))
        parts.append(_section("Which decisions matter", _importance(study)))
        parts.append(_section("Choice rules", _rules(study)))
    else:
        parts.append(_section("Results", "<p>No evaluation has finished yet.</p>"))
    parts.append(_section("Failed and refused trials", _problems(study)))
    oneshot = _oneshot(study)
    if oneshot:
        parts.append(_section("One-shot training", oneshot))
    return parts


def _configuration(summary: dict[str, Any]) -> list[tuple[str, str]]:
    config = summary["config"]
    budget = config.get("budget") or {}
    objectives = ", ".join(f"{o['name']} ({o['direction']})" for o in summary["objectives"])
    constraints = ", ".join(f"{c['name']} {c['op']} {c['bound']}" for c in summary["constraints"])
    return [
        ("space", _component(config.get("space"))),
        ("strategy", _component(config.get("strategy"))),
        ("evaluator", _component(config.get("evaluator"))),
        ("seed", str(config.get("seed"))),
        ("budget", ", ".join(f"{k} {v}" for k, v in budget.items() if v is not None) or "none"),
        ("objectives", objectives),
        ("constraints", constraints or "none"),
        ("reported", str(summary.get("reported"))),
        ("evaluations", f"{summary['n_evaluations']} ({summary['n_failed']} failed)"),
        ("refused before evaluation", str(summary["n_rejected"])),
        ("search time", f"{summary['elapsed_seconds']:.1f} s"),
    ]


def _component(part: Any) -> str:
    if not isinstance(part, Mapping):
        return str(part)
    options = {k: v for k, v in part.items() if k != "name"}
    shown = json.dumps(options, sort_keys=True, default=str) if options else ""
    return f"{part.get('name')} {shown}".strip()


def _pareto(study: Study, summary: dict[str, Any]) -> str:
    members = summary.get("pareto") or []
    volume = summary.get("hypervolume")
    names = list(members[0]["values"]) if members else []
    rows = [[m["trial"], m["arch"], *(m["values"].get(n) for n in names)] for m in members]
    caption = ""
    if volume:
        caption = (
            f"<p>hypervolume {_number(volume['value'])} from the reference point "
            f"({', '.join(_number(r) for r in volume['reference'])})</p>"
        )
    return _figure(study, "pareto") + caption + _table(["trial", "architecture", *names], rows)


def _best(study: Study, best: Any) -> str:
    arch = study.space.from_json(best.arch_json)
    values = [(name, _number(v)) for name, v in sorted(best.values.items())]
    return (
        f"<p>trial {best.number}: <code>{_e(best.arch)}</code></p>"
        + _drawing(arch)
        + _facts(values)
    )


def _top(study: Study, done: Sequence[Any]) -> str:
    primary = study.declaration.primary
    ranked = sorted(
        (t for t in done if t.feasible is not False and t.objective is not None),
        key=lambda t: -primary.oriented(t.objective),
    )[:TOP_K]
    names = sorted({n for t in ranked for n in t.values})
    rows = [[t.number, t.arch, *(t.values.get(n) for n in names)] for t in ranked]
    return _table(["trial", "architecture", *names], rows)


def _importance(study: Study) -> str:
    from archsearch.study.importance import decision_importance
    from archsearch.study.plot import _pyplot, importance_figure, importance_inputs

    archs, scores = importance_inputs(study)
    if len(archs) < 3:
        return "<p>Too few feasible evaluations to estimate it (3 at least).</p>"
    found = decision_importance(study.space, archs, scores)
    primary = study.declaration.primary
    rows = [
        [i.decision, i.share, str(i.best_choice), primary.oriented(i.best_mean), i.best_count]
        for i in found
    ]
    note = (
        "<p class=muted>Each decision's share of the variance of the primary objective over "
        "the evaluated architectures (first-order functional ANOVA, epsilon squared: an "
        "irrelevant decision scores about 0). A search samples where it expects good "
        "architectures, so a decision it settled early explains little here.</p>"
    )
    table = _table(
        ["decision", "share", "best choice", f"mean {primary.name} with it", "architectures"],
        rows,
    )
    figure = importance_figure(_pyplot(), found, len(archs), study)
    figure.tight_layout()
    return _svg(figure) + note + table


def _rules(study: Study) -> str:
    from archsearch.study.rules import DEFAULT_TOP, learn_rules, study_rows, top_mask

    archs, vectors, feasible = study_rows(study)
    top = top_mask(vectors, DEFAULT_TOP, feasible)
    if top.sum() < 2:
        return "<p>Too few evaluations to learn rules from.</p>"
    ruleset = learn_rules(study.space, archs, top)
    if not ruleset.rules:
        return (
            f"<p>No rule holds on the evidence (the top {DEFAULT_TOP:.0%} share no short "
            "description).</p>"
        )
    return (
        f"<p class=muted>Where the top {DEFAULT_TOP:.0%} of the evaluated architectures live "
        "(the same rules as <code>archsearch rules</code>).</p><pre>"
        + _e(ruleset.format())
        + "</pre>"
    )


def _problems(study: Study) -> str:
    bad = [t for t in study.trials if t.status not in ("complete", "running", "pending")]
    bad += [t for t in study.trials if t.status == "complete" and t.feasible is False]
    if not bad:
        return "<p>None.</p>"
    constraints = study.declaration.constraints
    rows = []
    for t in sorted(bad, key=lambda t: t.number):
        reason = t.error or ", ".join(
            f"{c.name} = {_number(t.values.get(c.name))} breaks {c}"
            for c in constraints
            if c.name in t.values and t.values[c.name] is not None and not c.holds(t.values[c.name])
        )
        rows.append([t.number, t.arch, t.status, reason or "infeasible"])
    return _table(["trial", "architecture", "status", "reason"], rows)


def _oneshot(study: Study) -> str:
    """The per-epoch diagnostics a one-shot search stores beside its study, if any."""
    if study.directory is None:
        return ""
    path = Path(study.directory) / "oneshot.json"
    try:
        history = json.loads(path.read_text(encoding="utf-8")).get("history") or []
    except (OSError, ValueError, AttributeError):
        return ""
    records = [r for r in history if isinstance(r, Mapping)]
    if not records:
        return ""
    columns = [c for c in ONESHOT_COLUMNS if any(c in r for r in records)]
    arch_key = next((k for k in ("arch", "derived") if any(k in r for r in records)), None)
    header = columns + ([arch_key] if arch_key else [])
    rows = [[r.get(c) for c in header] for r in records]
    return "<p class=muted>per epoch, as recorded in oneshot.json</p>" + _table(header, rows)


# --------------------------------------------------------------------------- drawing
def _drawing(arch: Mapping[str, Any]) -> str:
    """A cell (every label ``to<-from``) as its DAG, operations on edges; anything else
    as the table of its decisions."""
    edges = [(EDGE_LABEL.match(str(label)), str(op)) for label, op in arch.items()]
    if not edges or not all(m for m, _ in edges):
        return _table(["decision", "choice"], [[label, str(op)] for label, op in arch.items()])
    pairs = [(int(m.group(2)), int(m.group(1)), op) for m, op in edges]
    return cell_svg(pairs)


def cell_svg(edges: Iterable[tuple[int, int, str]]) -> str:
    """An SVG of a cell: nodes in a row, each edge ``(from, to, operation)`` an arc above
    (longer edges higher) labelled with its operation; ``none`` edges are dashed."""
    edges = list(edges)
    nodes = sorted({n for a, b, _ in edges for n in (a, b)})
    gap, radius, top = 170, 16, 40
    height = top + 60 * max(b - a for a, b, _ in edges) + 60
    width = gap * (len(nodes) - 1) + 80
    x = {n: 40 + gap * i for i, n in enumerate(nodes)}
    y0 = height - 30
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' font-family='sans-serif' font-size='12'>"
    ]
    for a, b, op in sorted(edges, key=lambda e: (e[1] - e[0], e[0])):
        lift = 55 * (b - a)
        mx, my = (x[a] + x[b]) / 2, y0 - lift
        dash = " stroke-dasharray='4 3'" if op == "none" else ""
        parts.append(
            f"<path d='M{x[a]},{y0 - radius} Q{mx},{my - lift * 0.6} {x[b]},{y0 - radius}' "
            f"fill='none' stroke='#4a6fa5' stroke-width='1.5'{dash}/>"
            f"<text x='{mx}' y='{my - lift * 0.05 + 4:.0f}' text-anchor='middle' "
            f"fill='#1d2433' stroke='white' stroke-width='3' paint-order='stroke'>"
            f"{_e(op)}</text>"
        )
    for n in nodes:
        parts.append(
            f"<circle cx='{x[n]}' cy='{y0}' r='{radius}' fill='#f3f5fa' stroke='#1d2433'/>"
            f"<text x='{x[n]}' y='{y0 + 4}' text-anchor='middle'>{n}</text>"
        )
    parts.append("</svg>")
    return "<div class=figure>" + "".join(parts) + "</div>"


def _figure(study: Study, kind: str) -> str:
    """The study's matplotlib figure of ``kind`` inline as SVG."""
    from archsearch.study.plot import draw

    return _svg(draw(study, kind))


def _svg(figure) -> str:
    """``figure`` as inline SVG (its XML prologue dropped); the figure is closed."""
    from archsearch.study.plot import _pyplot

    buffer = io.StringIO()
    try:
        figure.savefig(buffer, format="svg")
    finally:
        _pyplot().close(figure)
    svg = buffer.getvalue()
    return "<div class=figure>" + svg[svg.index("<svg") :] + "</div>"


# ---------------------------------------------------------------------------- pieces
def _section(title: str, content: str) -> str:
    return f"<h2>{_e(title)}</h2>{content}"


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f"<table class=facts>{rows}</table>"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return (
        f"<div class=wide><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _cell(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"<td>{_e(value)}</td>"
    return f"<td class=num>{_e(_number(value))}</td>"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
