"""``oneshot``: a weight-sharing search (DARTS, GDAS, SPOS, RSPS, ENAS; ProxylessNAS and
FBNet with a latency table and target on the mobilenet space) from the shell.

Trains a supernet, prints the per-epoch diagnostics and derives an architecture, as a study
in ``--out`` like every other search (:mod:`archsearch.oneshot.run`: ``study.db``, the
checkpoint ``supernet.pt``, the derived architecture as the study's best trial), so that
``archsearch show``, ``resume`` and ``export`` work on it; ``oneshot.json`` is a summary
written at the end. Optionally retrains the winner from scratch and exports it (through
:func:`archsearch.export.train_winner`, the export path of every study) and checks the
supernet's ranking against a ground-truth table::

    archsearch oneshot --method gdas --space nb201 --dataset fashion-mnist \\
        --space-opt channels=8 --space-opt cells_per_stage=1 --epochs 5 \\
        --train-size 6000 --valid-size 2000 --out runs/gdas --retrain --export gdas.pt2
    archsearch oneshot --method proxylessnas --space mobilenet --latency-table lut.csv \\
        --latency-target 3.0 --space-opt widths=[1.0] --epochs 10 --out runs/proxyless

Every input is checked before training starts; a user error is one line and exit status 2.
An ``--out`` that holds the same one-shot study continues it (as ``archsearch resume``); one
that holds another study is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from archsearch.checks import check_output_dir, check_output_file
from archsearch.cli.types import seed, valid_size
from archsearch.errors import ArchsearchError

RESULT = "oneshot.json"
SUPERNET = "supernet.pt"
SPACES = ("nb201", "darts", "mobilenet")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "oneshot",
        help="weight-sharing / differentiable search (darts, gdas, spos, rsps, enas, "
        "proxylessnas, fbnet, ofa)",
        description="Train a supernet, derive an architecture, optionally retrain and export it.",
    )
    p.add_argument(
        "--method", default="gdas",
        help="darts, gdas, spos, rsps, enas, or proxylessnas / fbnet / ofa (mobilenet space)",
    )  # fmt: skip
    p.add_argument("--space", default="nb201", choices=SPACES)
    p.add_argument("--dataset", default="fashion-mnist", help="registered dataset name")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--train-size", dest="train_size", type=int, help="supernet training images")
    p.add_argument(
        "--valid-size", dest="valid_size", type=valid_size, default=0.5,
        help="images (or a fraction) held out of the training set to choose the architecture",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", dest="batch_size", type=int, default=64)
    p.add_argument("--lr", type=float, help="weight learning rate (default 0.025)")
    p.add_argument("--arch-lr", dest="arch_lr", type=float, help="alpha learning rate")
    p.add_argument("--order", type=int, choices=(1, 2), help="DARTS order (default 1)")
    p.add_argument("--selection", choices=("argmax", "perturbation"))
    p.add_argument(
        "--early-stop-skips", dest="early_stop_skips", type=int,
        help="DARTS+: stop once the derived (normal) cell has this many skip connections",
    )  # fmt: skip
    p.add_argument(
        "--latency-table", dest="latency_table",
        help="proxylessnas/fbnet: latency lookup table (archsearch latency-table) of the space",
    )  # fmt: skip
    p.add_argument(
        "--latency-target", dest="latency_target_ms", type=float,
        help="proxylessnas/fbnet: latency target in ms the derived network should meet",
    )  # fmt: skip
    p.add_argument("--strategy", help="SPOS/RSPS: search strategy over inherited weights")
    p.add_argument("--search-budget", dest="search_budget", type=int)
    p.add_argument("--eval-size", dest="eval_size", type=int, help="validation images per check")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--amp", default="auto", help="bfloat16 autocast: auto (on CUDA), on, off")
    p.add_argument("--channels-last", dest="channels_last", default="auto", help="auto, on, off")
    p.add_argument("--seed", type=seed, default=0, help="seeds the split, weights and batches")
    p.add_argument(
        "--space-opt", dest="space_opts", action="append", default=[], metavar="KEY=VALUE",
        help="supernet size, e.g. channels=8, cells_per_stage=1 (nb201) or layers=5 (darts)",
    )  # fmt: skip
    p.add_argument(
        "--method-opt", dest="method_opts", action="append", default=[], metavar="KEY=VALUE",
        help="any other method option (VALUE parsed as JSON), e.g. tau_max=5",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="study directory (created)")
    p.add_argument(
        "--save-supernet",
        dest="save_supernet",
        action="store_true",
        help=f"kept for scripts: the study always keeps the trained supernet as {SUPERNET}",
    )
    p.add_argument(
        "--table",
        help="Fashion-MNIST ground-truth table: true accuracy of the "
        "derived cell and the supernet's ranking quality (nb201 only)",
    )
    p.add_argument(
        "--rank-limit", dest="rank_limit", type=int, help="rank only the first N rows of --table"
    )
    p.add_argument(
        "--retrain",
        action="store_true",
        help="train the derived architecture from scratch (the table's recipe "
        "with --table, else --retrain-opt options of evaluator 'train')",
    )
    p.add_argument(
        "--retrain-opt", dest="retrain_opts", action="append", default=[], metavar="KEY=VALUE",
        help="option of the 'train' evaluator for retraining, e.g. epochs=10",
    )  # fmt: skip
    p.add_argument("--export", help="save the retrained model here (implies --retrain)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(handler=run)


def _method_options(args: argparse.Namespace) -> dict[str, Any]:
    from archsearch.cli.search_cmd import parse_options

    options: dict[str, Any] = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "device": args.device,
        "amp": args.amp,
        "channels_last": args.channels_last,
    }
    for key in [
        "lr",
        "arch_lr",
        "order",
        "selection",
        "early_stop_skips",
        "strategy",
        "search_budget",
        "eval_size",
        "latency_target_ms",
    ]:
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    if args.latency_table is not None:  # absolute: a resumed study finds it from anywhere
        options["latency_table"] = str(Path(args.latency_table).resolve())
    options.update(parse_options(args.method_opts, "method"))
    return options


def run(args: argparse.Namespace) -> int:
    import torch

    import archsearch.components  # noqa: F401  (registries)
    from archsearch.cli.search_cmd import parse_options
    from archsearch.data.base import DATASETS
    from archsearch.oneshot import ONESHOT, build_supernet, load_search_data
    from archsearch.oneshot.data import recipe as data_recipe
    from archsearch.oneshot.run import run as run_study
    from archsearch.oneshot.run import study_config
    from archsearch.study import Study
    from archsearch.study.study import DATABASE

    # ------------------------------------------------------- validate before any work
    out = check_output_dir(args.out, "--out")
    if args.export is not None:
        if Path(args.export).exists():
            raise ArchsearchError(f"{args.export} exists; choose another --export path")
        check_output_file(args.export, "--export")
    method_cls = ONESHOT.get(args.method)
    DATASETS.get(args.dataset)
    if (out / RESULT).exists() and not (out / DATABASE).exists():
        raise ArchsearchError(f"{out} already holds a one-shot result; choose another --out")
    options = _method_options(args)
    log = None if args.quiet or args.json else _print_epoch
    try:
        method = method_cls(**options, log=log)
    except TypeError as exc:
        raise ArchsearchError(f"bad options for method {args.method!r}: {exc}") from None
    table = None
    if args.table is not None:
        from archsearch.tables.fmnist import load_fmnist_table

        table = load_fmnist_table(args.table)
        if args.space != "nb201":
            raise ArchsearchError("--table holds NAS-Bench-201 cells: use it with --space nb201")
    space_options = parse_options(args.space_opts, "space")
    retrain_options = parse_options(args.retrain_opts, "retrain")
    recipe = data_recipe(args.dataset, args.data_dir, args.valid_size, args.train_size, args.seed)
    data = load_search_data(**recipe)
    torch.manual_seed(args.seed)
    supernet = build_supernet(args.space, data.input_shape, data.num_classes, **space_options)
    method.check_supernet(supernet)  # e.g. a latency table without the supernet's units
    config = study_config(method, supernet.space, space_options, recipe, out)
    study = Study.from_config(config, out)  # refuses a directory holding another study

    # ------------------------------------------------------------------- search
    try:
        found = run_study(study, method=method, data=data, supernet=supernet, log=log)
    finally:
        study.close()
    summary = _summary(found, method.options(), recipe, out)
    if table is not None:
        summary["table"] = _table_checks(found, data, table, method, args)
    if args.retrain or args.export:
        summary["retrain"] = _retrain(out, table, retrain_options, args)
    (out / RESULT).write_text(json.dumps(summary, indent=2, default=str))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"{summary['method']}: {found.arch_string}")
        print(f"search seconds: {found.search_seconds:.1f}; result in {out / RESULT}")
        for key, value in summary.get("table", {}).items():
            print(f"{key}: {value}")
        if "retrain" in summary:
            print(f"retrained: {summary['retrain']}")
    return 0


def _summary(found: Any, options: dict[str, Any], recipe: dict[str, Any], out: Path) -> dict:
    """The ``oneshot.json`` summary (the keys of :meth:`OneShotResult.summary`, and where
    the study and its checkpoint are)."""
    training = found.training
    return {
        "method": found.study.config["oneshot"]["name"],
        "arch": found.arch_string,
        "search_seconds": round(found.search_seconds, 3),
        "epochs_run": training["epochs_run"],
        "stopped_early": training["stopped_early"],
        "runtime": training["runtime"],
        "options": options,
        "history": found.history,
        "details": found.details,
        "data": recipe,
        "supernet": training["supernet"],  # few-shot SPOS trains a split one
        "supernet_checkpoint": str(found.checkpoint),
        "study": str(out),
    }


def resume_study(study: Any, args: argparse.Namespace) -> int:
    """``archsearch resume DIR`` on a one-shot study (:func:`archsearch.oneshot.run.run`)."""
    from archsearch.cli.main import print_json
    from archsearch.cli.search_cmd import format_summary
    from archsearch.oneshot.run import TRAINING, describe
    from archsearch.oneshot.run import run as run_study

    quiet = args.quiet or args.json
    training = study.storage.get_meta(TRAINING)
    if not (training or {}).get("complete") and not args.json:
        print(f"the supernet of {study.directory} was not fully trained: training it again")
    try:
        found = run_study(study, log=None if quiet else _print_epoch, progress=not quiet)
        summary = study.summary()
        summary["oneshot"] = describe(study)
    finally:
        study.close()
    result = Path(study.directory) / RESULT
    if not result.exists():
        options = {k: v for k, v in study.config["oneshot"].items() if k not in ("name",)}
        data = options.pop("data", None)
        result.write_text(
            json.dumps(_summary(found, options, data, Path(study.directory)), indent=2)
        )
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary, study.directory))
        print(format_oneshot(summary["oneshot"]))
    return 0


def format_oneshot(report: dict[str, Any]) -> str:
    """The one-shot lines of ``archsearch show``: method, training state, epoch records."""
    training = report["training"]
    state = "complete" if training.get("complete") else "not complete"
    lines = [
        f"one-shot   {report['method']}: training {state}"
        + (f" ({training['epochs_run']} epochs)" if "epochs_run" in training else "")
        + f", supernet {report['checkpoint']}"
    ]
    if training.get("arch"):
        lines.append(f"derived    {training['arch']}")
    lines += ["", "epochs:"] if report["epochs"] else []
    lines += [format_epoch(record) for record in report["epochs"]]
    return "\n".join(lines)


def format_epoch(record: dict[str, Any]) -> str:
    keys = (
        "train_loss", "valid_loss", "valid_acc", "entropy", "skip_share",
        "parameter_free_share", "expected_latency_ms", "derived_latency_ms", "seconds",
    )  # fmt: skip
    parts = [f"{k} {record[k]:.4g}" for k in keys if isinstance(record.get(k), int | float)]
    part = f" of sub-supernet {record['part']}" if "part" in record else ""  # few-shot SPOS
    return f"epoch {record['epoch']}{part}: " + ", ".join(parts)


def _print_epoch(record: dict[str, Any]) -> None:
    print(format_epoch(record), file=sys.stderr, flush=True)


def _table_checks(found, data, table, method, args) -> dict[str, Any]:
    """True accuracy of the derived cell (when the table holds it) and SPOS-style ranking."""
    from archsearch.oneshot import Runtime, load_supernet
    from archsearch.oneshot.evaluator import InheritedWeights
    from archsearch.oneshot.ranking import table_ranking

    checks: dict[str, Any] = {"path": table.path, "rows": len(table)}
    valid, test = table.column("fmnist_valid"), table.column("fmnist_test")
    if found.arch in table:
        row = table.position(found.arch)
        checks["derived_valid"] = float(valid[row])
        checks["derived_test"] = float(test[row])
        checks["derived_valid_percentile"] = round(100.0 * float((valid <= valid[row]).mean()), 2)
    else:
        checks["derived_in_table"] = False
    supernet = found.supernet  # None when an earlier run trained it
    if supernet is None:
        supernet, _ = load_supernet(found.checkpoint)
    runtime = getattr(method, "runtime", None)
    if runtime is None:
        runtime = Runtime.resolve(args.device, args.amp, args.channels_last)
    scorer = InheritedWeights(supernet, data, runtime, eval_size=method.eval_size)
    report, _ = table_ranking(scorer, table, limit=args.rank_limit)
    checks["ranking"] = report
    return checks


def _retrain(out: Path, table, options, args) -> dict[str, Any]:
    """Train the study's winner from scratch, and export it with ``--export``: the export
    path and metadata of every study (:func:`archsearch.export.train_winner`)."""
    from archsearch.export import save_winner, train_winner

    space_options: dict[str, Any] = {}
    if table is not None:
        recipe = {**table.recipe["evaluator"], **options}
        space_options = {k: v for k, v in table.recipe["space"].items() if k != "name"}
    else:
        recipe = {
            "dataset": args.dataset,
            "data_dir": args.data_dir,
            "device": args.device,
            **options,
        }
    recipe.pop("name", None)
    winner = train_winner(out, recipe, space_options, seed=args.seed)
    metadata = winner.metadata
    info: dict[str, Any] = {
        "recipe": recipe,
        "space": metadata["space"],
        "valid_accuracy": metadata["valid_accuracy"],
        "test_accuracy": metadata["test_accuracy"],
        "train_seconds": metadata["train_seconds"],
    }
    if args.export:
        save_winner(winner, args.export)
        info["export"] = str(args.export)
    return info
