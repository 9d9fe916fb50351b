"""``oneshot``: a weight-sharing search (DARTS, GDAS, SPOS, RSPS, ENAS) from the shell.

Trains a supernet, prints the per-epoch diagnostics, derives an architecture and writes
``oneshot.json`` to ``--out``; optionally retrains the winner from scratch, exports it as a
plain-PyTorch model and checks the supernet's ranking against a ground-truth table::

    archsearch oneshot --method gdas --space nb201 --dataset fashion-mnist \\
        --space-opt channels=8 --space-opt cells_per_stage=1 --epochs 5 \\
        --train-size 6000 --valid-size 2000 --out runs/gdas --retrain --export gdas.pt2

Every input is checked before training starts; a user error is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError

RESULT = "oneshot.json"
SUPERNET = "supernet.pt"
SPACES = ("nb201", "darts")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "oneshot",
        help="weight-sharing / differentiable search (darts, gdas, spos, rsps, enas)",
        description="Train a supernet, derive an architecture, optionally retrain and export it.",
    )
    p.add_argument("--method", default="gdas", help="darts, gdas, spos, rsps or enas")
    p.add_argument("--space", default="nb201", choices=SPACES)
    p.add_argument("--dataset", default="fashion-mnist", help="registered dataset name")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--train-size", dest="train_size", type=int, help="supernet training images")
    p.add_argument(
        "--valid-size", dest="valid_size", type=float, default=0.5,
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
    p.add_argument("--strategy", help="SPOS/RSPS: search strategy over inherited weights")
    p.add_argument("--search-budget", dest="search_budget", type=int)
    p.add_argument("--eval-size", dest="eval_size", type=int, help="validation images per check")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--amp", default="auto", help="bfloat16 autocast: auto (on CUDA), on, off")
    p.add_argument("--channels-last", dest="channels_last", default="auto", help="auto, on, off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--space-opt", dest="space_opts", action="append", default=[], metavar="KEY=VALUE",
        help="supernet size, e.g. channels=8, cells_per_stage=1 (nb201) or layers=5 (darts)",
    )  # fmt: skip
    p.add_argument(
        "--method-opt", dest="method_opts", action="append", default=[], metavar="KEY=VALUE",
        help="any other method option (VALUE parsed as JSON), e.g. tau_max=5",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="directory for oneshot.json (created)")
    p.add_argument(
        "--save-supernet",
        dest="save_supernet",
        action="store_true",
        help=f"keep the trained supernet as {SUPERNET} (for evaluator 'supernet')",
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
    ]:
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    options.update(parse_options(args.method_opts, "method"))
    return options


def _valid_size(value: float) -> int | float:
    return int(value) if float(value).is_integer() and value >= 1 else float(value)


def run(args: argparse.Namespace) -> int:
    import torch

    import archsearch.components  # noqa: F401  (registries)
    from archsearch.cli.search_cmd import parse_options
    from archsearch.data.base import DATASETS
    from archsearch.oneshot import ONESHOT, build_supernet, load_search_data, save_supernet
    from archsearch.oneshot.data import recipe as data_recipe

    # ------------------------------------------------------- validate before any work
    method_cls = ONESHOT.get(args.method)
    DATASETS.get(args.dataset)
    out = Path(args.out)
    if (out / RESULT).exists():
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
    recipe = data_recipe(
        args.dataset, args.data_dir, _valid_size(args.valid_size), args.train_size, args.seed
    )
    data = load_search_data(**recipe)
    torch.manual_seed(args.seed)
    supernet = build_supernet(args.space, data.input_shape, data.num_classes, **space_options)
    if args.export is not None and Path(args.export).exists():
        raise ArchsearchError(f"{args.export} exists; choose another --export path")

    # ------------------------------------------------------------------- search
    result = method.search(supernet, data)
    summary = result.summary()
    summary["data"] = recipe
    summary["supernet"] = result.supernet.config()  # few-shot SPOS returns a split one
    space = supernet.space
    if table is not None:
        summary["table"] = _table_checks(result, data, table, method, args.rank_limit)
    if args.retrain or args.export:
        summary["retrain"] = _retrain(result, space, table, retrain_options, args)
    out.mkdir(parents=True, exist_ok=True)
    if args.save_supernet:
        save_supernet(out / SUPERNET, result.supernet, recipe)
        summary["supernet_checkpoint"] = str(out / SUPERNET)
    (out / RESULT).write_text(json.dumps(summary, indent=2, default=str))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"{result.method}: {result.arch_string}")
        print(f"search seconds: {result.search_seconds:.1f}; result in {out / RESULT}")
        for key, value in summary.get("table", {}).items():
            print(f"{key}: {value}")
        if "retrain" in summary:
            print(f"retrained: {summary['retrain']}")
    return 0


def _print_epoch(record: dict[str, Any]) -> None:
    keys = (
        "train_loss", "valid_loss", "valid_acc", "entropy", "skip_share",
        "parameter_free_share", "seconds",
    )  # fmt: skip
    parts = [f"{k} {record[k]:.4g}" for k in keys if isinstance(record.get(k), int | float)]
    part = f" of sub-supernet {record['part']}" if "part" in record else ""  # few-shot SPOS
    print(f"epoch {record['epoch']}{part}: " + ", ".join(parts), file=sys.stderr, flush=True)


def _table_checks(result, data, table, method, limit) -> dict[str, Any]:
    """True accuracy of the derived cell (when the table holds it) and SPOS-style ranking."""
    from archsearch.oneshot.evaluator import InheritedWeights
    from archsearch.oneshot.ranking import table_ranking

    checks: dict[str, Any] = {"path": table.path, "rows": len(table)}
    valid, test = table.column("fmnist_valid"), table.column("fmnist_test")
    if result.arch in table:
        row = table.position(result.arch)
        checks["derived_valid"] = float(valid[row])
        checks["derived_test"] = float(test[row])
        checks["derived_valid_percentile"] = round(100.0 * float((valid <= valid[row]).mean()), 2)
    else:
        checks["derived_in_table"] = False
    scorer = InheritedWeights(result.supernet, data, method.runtime, eval_size=method.eval_size)
    report, _ = table_ranking(scorer, table, limit=limit)
    checks["ranking"] = report
    return checks


def _retrain(result, space, table, options, args) -> dict[str, Any]:
    from archsearch.components import build_space
    from archsearch.oneshot.pipeline import export_model, retrain

    if table is not None:
        recipe = {**table.recipe["evaluator"], **options}
        space = build_space(table.recipe["space"])
    else:
        recipe = {
            "dataset": args.dataset,
            "data_dir": args.data_dir,
            "device": args.device,
            **options,
        }
    recipe.pop("name", None)
    trained, data = retrain(result.arch, space, recipe, seed=args.seed)
    info: dict[str, Any] = {
        "recipe": recipe,
        "space": space.config(),
        "valid_accuracy": trained.get("valid_accuracy"),
        "test_accuracy": trained.get("test_accuracy"),
        "train_seconds": trained.get("train_seconds"),
    }
    if args.export:
        metadata = {
            "arch": space.to_string(result.arch),
            "space": space.config(),
            "method": result.method,
            "recipe": recipe,
        }
        info["export"] = str(export_model(trained, data, args.export, metadata))
    return info
