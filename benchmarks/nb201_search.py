"""Search strategies on the NAS-Bench-201 table: the benchmark's protocol, many seeds.

Each run searches on ``<dataset>_valid`` for ``--budget`` queries and reports the
``<dataset>_test`` accuracy of the architecture it picked (best by validation). Prints, per
strategy and budget, mean ± std over seeds and the wall time.

    python benchmarks/nb201_search.py --strategies random,evolution,local \
        --dataset cifar10 --budget 100 --seeds 100 --table ../shared/data/nb201/nb201.csv
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

DEFAULT_TABLE = Path(__file__).resolve().parents[1].parent / "shared/data/nb201/nb201.csv"


def run_one(task: tuple[str, str, str, int, list[int]]) -> tuple[str, int, list[float]]:
    """One strategy and seed; returns the reported accuracy after each budget in ``budgets``."""
    from archsearch.study import Study

    table, dataset, strategy, seed, budgets = task
    config = {
        "space": {"name": "nb201"},
        "strategy": {"name": strategy},
        "evaluator": {"name": "nb201-table", "table": table, "dataset": dataset},
        "seed": seed,
        "budget": {"evaluations": max(budgets), "seconds": None},
    }
    study = Study.from_config(config)
    study.optimize()
    trajectory = study.trajectory()
    return strategy, seed, [trajectory[b - 1]["best_reported"] for b in budgets]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="random,evolution,local")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--budget", default="100", help="queries; comma list for several")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    strategies = [s for s in args.strategies.split(",") if s]
    budgets = sorted(int(b) for b in args.budget.split(","))
    from archsearch.tables import load_nb201_table

    load_nb201_table(args.table)  # fail fast on a bad table
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()},"
        f" workers {args.workers}; seeds 0..{args.seeds - 1}; dataset {args.dataset};"
        f" search on {args.dataset}_valid, report {args.dataset}_test"
    )
    tasks = [
        (args.table, args.dataset, s, seed, budgets)
        for s in strategies
        for seed in range(args.seeds)
    ]
    results: dict[str, list[list[float]]] = {s: [] for s in strategies}
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for strategy in strategies:
            t0 = time.perf_counter()
            mine = [t for t in tasks if t[2] == strategy]
            for _, _, finals in pool.map(
                run_one, mine, chunksize=max(1, len(mine) // (4 * args.workers))
            ):
                results[strategy].append(finals)
            seconds[strategy] = time.perf_counter() - t0
    total = time.perf_counter() - start

    header = (
        f"{'strategy':<22}" + "".join(f"{f'{b} queries':>18}" for b in budgets) + f"{'wall s':>9}"
    )
    print(header)
    for strategy in strategies:
        values = np.array(results[strategy])
        cells = "".join(
            f"{values[:, i].mean():>11.2f} ± {values[:, i].std():<4.2f}"
            for i in range(len(budgets))
        )
        print(f"{strategy:<22}{cells}{seconds[strategy]:>9.1f}")
    print(f"total wall time: {total:.1f} s")


if __name__ == "__main__":
    main()
