"""Zero-cost proxies diagnosed against our Fashion-MNIST table, and a fitted combination.

Every registered proxy scores, at initialisation, the very network the table trained (the
table's recipe: NAS-Bench-201 cells at C=8, N=1 on 1x28x28 inputs for the ``cpu`` recipe)
on one seeded batch of Fashion-MNIST training images. Each proxy, and #params and FLOPs as
baselines, is diagnosed against the table's test accuracy with
:func:`archsearch.proxies.report.diagnose_estimators` (Kendall, Spearman, within the true
top 10%/5%, precision at the top, size bias).

The combination is judged honestly: over ``--splits`` random splits, its weights are fitted
(:func:`archsearch.proxies.fit_proxy_weights`; the comparison is
:func:`archsearch.proxies.combine.held_out_comparison`) on the *validation* accuracy of
``--fit-size`` architectures, what a search would have evaluated, and it is scored by
Spearman's rho with *test* accuracy on the remaining architectures only. Every single proxy,
#params, the rank average of all proxies, and "the single proxy that ranked the fitted
architectures best" are scored on the same held-out sets, so the comparison is like for like.

Fits: non-negative least squares on standardised proxy ranks (every proxy is higher-is-better,
so the sign constraint is the regulariser), ridge shrunk to the rank average, and the
registry's default Spearman search. The fitting methods and fit sizes were compared on
held-out *validation* accuracy with other split seeds before this script reported on test
accuracy: with 30 evaluated architectures no fit beats synflow (the data are too few for 14
weights), with 100 the non-negative fit does. ``--fit-size`` takes a list to show both.

    python benchmarks/proxies_fmnist.py --table data/fmnist_nb201.csv --fit-size 30,100 \
        --splits 50 --scores benchmarks/results/fmnist_proxy_scores.csv

``--scores`` caches the per-architecture scores (one row per ``arch``, one column per
proxy): architectures already in it are not scored again.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT / "data" / "fmnist_nb201.csv"


def read_scores(path: Path) -> dict[str, dict[str, float]]:
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {
            row["arch"]: {k: float(v) for k, v in row.items() if k != "arch"}
            for row in csv.DictReader(f)
        }


def write_scores(path: Path, cache: dict[str, dict[str, float]], names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", *names, *(f"seconds_{n}" for n in names)])
        for arch, row in cache.items():
            writer.writerow(
                [arch, *(repr(row[n]) for n in names), *(repr(row[f"seconds_{n}"]) for n in names)]
            )
    os.replace(tmp, path)


def compute_scores(table, names, batch_size, seed, cache_path):
    """Scores (and seconds) of every table architecture for every proxy, using the cache."""
    from archsearch.components import build_space
    from archsearch.proxies.runner import fashion_mnist_batch, score_architectures

    cache = read_scores(cache_path) if cache_path else {}
    todo = [a for a in table.archs if a not in cache or any(n not in cache[a] for n in names)]
    if todo:
        space = build_space(table.recipe["space"])
        inputs, targets = fashion_mnist_batch(batch_size, (1, 28, 28), 10, seed=seed)
        archs = [space.from_string(a) for a in todo]
        chunk = 25
        for start in range(0, len(archs), chunk):
            part = archs[start : start + chunk]
            scores, seconds = score_architectures(
                space, part, names, inputs, targets, num_classes=10, seed=seed
            )
            for i, arch in enumerate(part):
                row = cache.setdefault(space.to_string(arch), {})
                for n in names:
                    row[n] = float(scores[n][i])
                    row[f"seconds_{n}"] = float(seconds[n][i])
            if cache_path:
                write_scores(cache_path, cache, names)
            print(f"  scored {min(start + chunk, len(archs))}/{len(archs)}", flush=True)
    scores = {n: np.array([cache[a][n] for a in table.archs]) for n in names}
    seconds = {n: np.array([cache[a][f"seconds_{n}"] for a in table.archs]) for n in names}
    return scores, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--proxies", default="all")
    parser.add_argument("--batch", type=int, default=64, help="Fashion-MNIST images scored")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and batch seed")
    parser.add_argument(
        "--fit-size", default="30,100", help="evaluated architectures per fit, comma list"
    )
    parser.add_argument("--splits", type=int, default=50)
    parser.add_argument("--scores", default=None, help="per-architecture score cache (CSV)")
    harness.add_common(parser, threads=1)
    args = parser.parse_args(argv)
    with harness.json_mode(args):
        report = run(args)
    harness.write_json(args.json, report)


def run(args: argparse.Namespace) -> dict:
    """The report, printed; returns its figures for ``--json``."""

    import torch

    from archsearch.diagnostics import spearman_rho
    from archsearch.proxies import (
        diagnose_estimators,
        format_table,
        rank_average,
        resolve_proxy_names,
    )
    from archsearch.tables import load_fmnist_table

    torch.set_num_threads(args.threads)
    table = load_fmnist_table(args.table)
    names = resolve_proxy_names(args.proxies)
    valid, test = table.column("fmnist_valid"), table.column("fmnist_test")
    report = harness.header(
        args,
        f"proxy seed {args.seed}, batch {args.batch} Fashion-MNIST training images;"
        f" split seed {args.seed}",
    )
    print(
        f"table: {len(table)} architectures of {args.table}, recipe {table.recipe['name']};"
        f" test accuracy {test.min():.1f}..{test.max():.1f} (median {np.median(test):.1f}),"
        f" {int((test < 20).sum())} untrainable (< 20%); Spearman(valid, test) ="
        f" {spearman_rho(valid, test):.3f}"
    )
    started = time.process_time()
    scores, seconds = compute_scores(
        table, names, args.batch, args.seed, Path(args.scores) if args.scores else None
    )
    print(f"scoring: {time.process_time() - started:.0f} CPU s in this run (cached rows free)")

    print(
        "\nEvery proxy, and their rank average (no fitting, so honest on all rows), against"
        " Fashion-MNIST test accuracy, all architectures:"
    )
    rows = diagnose_estimators(
        {**scores, "rank average (all)": rank_average(scores, names)}, test,
        params=table.column("params"), flops=table.column("flops"),
        seconds={n: float(np.nanmean(s)) for n, s in seconds.items()},
    )  # fmt: skip
    rows.sort(key=lambda r: -r["spearman"] if math.isfinite(r["spearman"]) else 2)
    print(format_table(rows))
    report["all_architectures"] = rows
    report["held_out"] = {}
    for fit_size in (int(f) for f in args.fit_size.split(",")):
        report["held_out"][fit_size] = report_held_out(
            scores, valid, test, names, fit_size, args.splits, args.seed
        )
    return report


def report_held_out(scores, valid, test, names, fit_size: int, splits: int, seed: int) -> dict:
    """Print the held-out comparison of :func:`held_out_comparison` for one fit size."""
    print(
        f"\nHeld-out Spearman with test accuracy: weights fitted on the validation accuracy of"
        f" {fit_size} random architectures, scored on the other {len(test) - fit_size};"
        f" {splits} splits (mean +- std):"
    )
    from archsearch.proxies.combine import held_out_comparison

    results, chosen = held_out_comparison(scores, valid, test, names, fit_size, splits, seed)
    order = sorted(results, key=lambda k: -np.nanmean(results[k]))
    for name in order:
        r = np.asarray(results[name])
        print(f"  {name:24s} {np.nanmean(r):.3f} +- {np.nanstd(r):.3f}")
    singles = np.vstack([results[n] for n in names])
    best_single = max(names, key=lambda k: np.nanmean(results[k]))
    combinations = (
        "fitted, non-negative",
        "fitted, shrunk to avg",
        "fitted (registry)",
        "rank average (all)",
    )
    for name in combinations:
        combined = np.asarray(results[name])
        print(
            f"{name}: beats every single proxy (params and flops included) on the same"
            f" held-out set in {100 * np.mean(combined > np.nanmax(singles, axis=0)):.0f}% of"
            f" splits, beats the best single proxy on average ({best_single}) in"
            f" {100 * np.mean(combined > np.asarray(results[best_single])):.0f}%,"
            f" beats params in {100 * np.mean(combined > np.asarray(results['params'])):.0f}%"
        )
    print(f"'best single on fit set' chose: {chosen}")
    return {
        "spearman_mean": {k: float(np.nanmean(results[k])) for k in order},
        "spearman_std": {k: float(np.nanstd(results[k])) for k in order},
        "best_single_chosen": chosen,
    }


if __name__ == "__main__":
    main()
