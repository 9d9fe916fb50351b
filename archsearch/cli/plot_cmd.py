"""``plot``: a PNG of a study: its Pareto front, its trajectory or its decisions' importance."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    plot = subparsers.add_parser(
        "plot",
        help="draw a study's Pareto front, trajectory or decision importance to a PNG",
        description="pareto: one panel per pair of objectives, every evaluated point, the front "
        "highlighted; trajectory: each evaluation and the best so far, against evaluations and "
        "evaluation time; importance: each decision's share of the primary objective's "
        "variance. Needs matplotlib (the 'plot' extra).",
    )
    plot.add_argument("directory")
    plot.add_argument("--to", required=True, help="output file, e.g. front.png")
    plot.add_argument(
        "--kind",
        choices=("pareto", "trajectory", "importance"),
        help="default: pareto for several objectives, else trajectory",
    )
    plot.set_defaults(handler=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    from archsearch.study import Study
    from archsearch.study.plot import plot_study

    study = Study.load(args.directory)
    try:
        path = plot_study(study, args.to, args.kind)
    finally:
        study.close()
    print(f"wrote {path}")
    return 0
