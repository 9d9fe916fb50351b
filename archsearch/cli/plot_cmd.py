"""``plot``: a PNG of a study: every evaluated point, the Pareto front highlighted."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    plot = subparsers.add_parser(
        "plot",
        help="draw the study's evaluated architectures and Pareto front to a PNG",
        description="One panel per pair of objectives; a single-objective study is drawn "
        "against the number of evaluations. Needs matplotlib (the 'plot' extra).",
    )
    plot.add_argument("directory")
    plot.add_argument("--to", required=True, help="output file, e.g. front.png")
    plot.set_defaults(handler=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    from archsearch.study import Study
    from archsearch.study.plot import plot_study

    study = Study.load(args.directory)
    try:
        path = plot_study(study, args.to)
    finally:
        study.close()
    print(f"wrote {path}")
    return 0
