"""``to-optuna``: a study written as an Optuna study, for ``optuna-dashboard`` and
``optuna.visualization``. Reads the study's stored strings only (never imports a module the
study file names); see :mod:`archsearch.study.to_optuna` for what maps to what."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "to-optuna",
        help="write the study as an Optuna study (for optuna-dashboard, optuna.visualization)",
        description="Write the study as an Optuna study: one categorical parameter per "
        "decision, one value per objective with its direction, hard constraints as Optuna's "
        "constraints; failed trials FAIL, refused ones PRUNED, running ones skipped; the "
        "architecture string and every stored value as user attributes. Needs optuna (the "
        "'optuna' extra). The study is read, never written, and no module it names is "
        "imported.",
    )
    command.add_argument("directory", help="study directory (read, never written)")
    command.add_argument(
        "--storage", required=True, metavar="URL", help="an SQLite URL, e.g. sqlite:///optuna.db"
    )
    command.add_argument(
        "--study-name", dest="study_name", metavar="NAME", help="default: the directory's name"
    )
    command.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an Optuna study of that name (refused otherwise)",
    )
    command.set_defaults(handler=run_to_optuna)


def run_to_optuna(args: argparse.Namespace) -> int:
    from archsearch.study.to_optuna import import_optuna, write_optuna

    optuna = import_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our summary line says it all
    done = write_optuna(args.directory, args.storage, args.study_name, overwrite=args.overwrite)
    skipped = f", {done.skipped_running} running skipped" if done.skipped_running else ""
    print(
        f"wrote {done.written} trials{skipped} to Optuna study {done.study_name!r} in "
        f"{args.storage} (choices from {done.choices_from}); view: optuna-dashboard {args.storage}"
    )
    return 0
