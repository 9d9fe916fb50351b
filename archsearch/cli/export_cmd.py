"""``export``: the best architecture of a study as a plain-PyTorch model file."""

from __future__ import annotations

import argparse

from archsearch.checks import check_output_file
from archsearch.cli.search_cmd import _add_options, parse_options
from archsearch.cli.types import seed


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export",
        help="save the best architecture, trained, as a torch.export file",
        description="Load it without archsearch: torch.export.load(PATH).module()",
    )
    export.add_argument("directory")
    export.add_argument("--to", required=True, help="output file, e.g. model.pt2")
    export.add_argument("--dataset", help="train the winner on this dataset (tabular studies)")
    export.add_argument("--data-dir", dest="data_dir")
    export.add_argument("--epochs", type=int)
    export.add_argument("--batch-size", dest="batch_size", type=int)
    export.add_argument("--lr", type=float)
    export.add_argument("--train-size", dest="train_size", type=int)
    export.add_argument("--device")
    export.add_argument(
        "--seed", type=seed, default=0, help="training seed when the winner is trained here"
    )
    export.add_argument(
        "--pick", action="append", metavar="'NAME<=VALUE'",
        help="export the Pareto-front member with the best primary objective meeting this "
        "condition instead of the best trial (repeatable: all must hold)",
    )  # fmt: skip
    _add_options(export, "recipe", "more training options")
    _add_options(export, "space", "resize the network, e.g. channels=8")
    export.add_argument("--json", action="store_true")
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from archsearch.cli.main import print_json
    from archsearch.export import export_study

    check_output_file(args.to, "--to")  # before the winner is trained, which takes minutes
    recipe = {
        key: getattr(args, key)
        for key in ("dataset", "data_dir", "epochs", "batch_size", "lr", "train_size", "device")
        if getattr(args, key) is not None
    }
    recipe.update(parse_options(args.recipe_opts, "recipe"))
    space_options = parse_options(args.space_opts, "space")
    from archsearch.study.objectives import Constraint

    pick = [Constraint.parse(text) for text in args.pick or []]
    metadata = export_study(
        args.directory, args.to, recipe=recipe or None, space_options=space_options,
        seed=args.seed, pick=pick,
    )  # fmt: skip
    if args.json:
        print_json({"path": args.to, **metadata})
    else:
        accuracy = metadata["test_accuracy"]
        print(f"exported {metadata['arch']} to {args.to}")
        if accuracy is not None:
            print(f"test accuracy on {metadata['dataset']}: {accuracy:.2f}%")
        print(f'load it with plain PyTorch: torch.export.load("{args.to}").module()')
    return 0
