"""``report``: a study as one self-contained HTML page (:mod:`archsearch.study.report`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser(
        "report",
        help="write a study's results as one self-contained HTML page",
        description="Configuration, trajectory, Pareto front, best architecture drawn, top "
        "architectures, which decisions matter, choice rules, failed and refused trials and "
        "one-shot diagnostics, in one HTML file with inline figures (no network, no script). "
        "Needs matplotlib (the 'plot' extra).",
    )
    report.add_argument("directory", help="study directory (read, never written)")
    report.add_argument("--to", required=True, help="output file, e.g. report.html")
    report.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    from archsearch.study import Study
    from archsearch.study.report import write_report

    study = Study.load(args.directory)
    try:
        path = write_report(study, args.to)
    finally:
        study.close()
    print(f"wrote {path}")
    return 0
