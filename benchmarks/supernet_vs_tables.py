"""How well does a supernet rank the Fashion-MNIST cells, and how well could anything?

One saved supernet (``save_supernet``), several ground-truth tables built by
``build_fmnist_table.py``: the ``cpu`` table, its replicates (``--seed-offset``: the same
cells and recipe, other seeds) and tables of other recipes (``cpu-long``). Prints Kendall's
tau of every pair among the tables, the means of replicate tables (``--mean``), the
supernet's inherited-weight accuracy and #params, each on the cells the pair shares.

Replicates also bound what any estimator can reach: their agreement gives the noise ceiling
(:func:`archsearch.diagnostics.replicate_agreement`, from
:func:`archsearch.diagnostics.noise_ceiling`), for one run and for their mean.

    python benchmarks/supernet_vs_tables.py \\
        --checkpoint benchmarks/results/oneshot_spos24.spos_supernet.pt \\
        --table cpu=data/fmnist_nb201.csv --table cpu-seed1=data/fmnist_nb201_seed1.csv \\
        --table cpu-long=data/fmnist_nb201_long.csv --mean cpu,cpu-seed1

``--scores FILE`` keeps the supernet's scores (arch, score) and reuses them on the next run
with the same checkpoint file name and scorer options (its first line records them).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

Column = dict[str, float]  # architecture string -> value


def read_tables(specs: list[str], column: str) -> tuple[dict[str, Column], dict, Column]:
    """``NAME=PATH`` specs -> the column per table, each table's recipe name, and #params
    (the same in every table)."""
    from archsearch.tables.fmnist import load_fmnist_table

    columns, recipes, params = {}, {}, {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--table wants NAME=PATH, got {spec!r}")
        table = load_fmnist_table(path)
        names = [table.space.to_string(a) for a in table.architectures()]
        columns[name] = dict(zip(names, map(float, table.column(column)), strict=True))
        recipes[name] = table.recipe["name"]
        params.update(zip(names, map(float, table.column("params")), strict=True))
    return columns, recipes, params


def supernet_scores(
    checkpoint: str, archs: list[str], cache: str | None, **scorer_options: int
) -> Column:
    """Inherited-weight validation accuracy of ``archs`` (an :class:`InheritedWeights` with
    ``scorer_options``), from ``cache`` where it has them."""
    from archsearch.oneshot import InheritedWeights, Runtime, load_search_data, load_supernet

    # the cache's first line names what made its scores: another checkpoint or scorer is refused
    settings = "# " + json.dumps({"checkpoint": Path(checkpoint).name, **scorer_options})
    scores: Column = {}
    if cache and Path(cache).exists():
        with open(cache) as f:
            first = f.readline().rstrip("\n")
            if first != settings:
                raise SystemExit(f"{cache} holds scores made with {first[2:]}, not {settings[2:]}")
            scores = {row["arch"]: float(row["score"]) for row in csv.DictReader(f)}
    todo = [a for a in archs if a not in scores]
    if todo:
        net, recipe = load_supernet(checkpoint)
        started = time.perf_counter()
        data = load_search_data(**recipe)
        scorer = InheritedWeights(net, data, Runtime.resolve("cpu"), **scorer_options)
        scores.update({a: scorer.score(net.space.from_string(a))[0] for a in todo})
        seconds = time.perf_counter() - started
        print(f"scored {len(todo)} cells with the supernet in {seconds:.0f} s")
        if cache:
            with open(cache, "w", newline="") as f:
                f.write(settings + "\n")
                writer = csv.writer(f)
                writer.writerow(["arch", "score"])
                writer.writerows(sorted(scores.items()))
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="append", required=True, help="NAME=PATH, repeatable")
    parser.add_argument("--mean", action="append", default=[], help="NAME,NAME,...: replicates")
    parser.add_argument("--checkpoint", help="a save_supernet() file")
    parser.add_argument("--scores", help="CSV cache of the supernet's scores")
    parser.add_argument("--column", default="fmnist_valid")
    parser.add_argument("--eval-size", dest="eval_size", type=int, default=1000)
    parser.add_argument(
        "--finetune-steps",
        dest="finetune_steps",
        type=int,
        default=0,
        help="train each path alone this many steps before scoring it (InheritedWeights)",
    )
    harness.add_common(parser, threads=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with harness.json_mode(args):
        report = run(args)
    harness.write_json(args.json, report)


def run(args: argparse.Namespace) -> dict:
    """The comparisons, printed; returns them for ``--json``."""
    from archsearch.diagnostics import kendall_shared as tau
    from archsearch.diagnostics import replicate_agreement, replicate_mean

    report = harness.header(args)
    report.update(replicates={}, kendall={})

    columns, recipes, params = read_tables(args.table, args.column)
    truths = dict(columns)
    print(f"column {args.column}; tables: " + ", ".join(
        f"{n} ({recipes[n]} recipe, {len(c)} cells)" for n, c in columns.items()
    ))  # fmt: skip

    print("\nreplicates (same recipe, other seeds): agreement and noise ceiling")
    for spec in args.mean:
        names = spec.split(",")
        if len(set(names)) < 2 or not set(names) <= set(columns):
            raise SystemExit(f"--mean {spec}: name two or more of the tables {sorted(columns)}")
        if len({recipes[n] for n in names}) != 1:
            raise SystemExit(f"--mean {spec}: the tables were trained with different recipes")
        agreement = report["replicates"][spec] = replicate_agreement(columns, names)
        mean = truths[f"mean({spec})"] = replicate_mean(columns, names)
        print(
            f"  {spec}: Kendall between runs {agreement['kendall_between_runs']:.3f} over"
            f" {agreement['cells']} cells; a perfect estimator reaches"
            f" {agreement['ceiling_one_run']:.3f} against one run,"
            f" {agreement['ceiling_mean']:.3f} against their mean"
        )
        # an estimator that is nothing but more runs of the recipe, against a run it lacks
        for held_out in (n for n in columns if n not in names and recipes[n] == recipes[names[0]]):
            value, n = tau(mean, columns[held_out])
            agreement[f"mean_vs_held_out_{held_out}"] = value
            print(f"    the mean of {spec} against the held-out run {held_out}: {value:.3f} ({n})")

    estimators = {"#params": params}
    if args.checkpoint:
        cells = sorted(set().union(*columns.values()))
        scores = supernet_scores(
            args.checkpoint,
            cells,
            args.scores,
            eval_size=args.eval_size,
            finetune_steps=args.finetune_steps,
        )
        estimators["supernet"] = scores
    print("\nKendall's tau (cells compared)")
    for (a, ca), (b, cb) in itertools.combinations(columns.items(), 2):
        value, n = tau(ca, cb)
        report["kendall"][f"{a} vs {b}"] = {"kendall": value, "cells": n}
        print(f"  {a + ' vs ' + b:<44} {value:6.3f} ({n})")
    for name, estimate in estimators.items():
        for truth, column in truths.items():
            value, n = tau(estimate, column)
            report["kendall"][f"{name} vs {truth}"] = {"kendall": value, "cells": n}
            print(f"  {name + ' vs ' + truth:<44} {value:6.3f} ({n})")
    return report


if __name__ == "__main__":
    main()
