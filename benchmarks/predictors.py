"""Performance predictors on NAS-Bench-201: GATES' protocol, several seeds.

Protocol (Ning et al., ECCV 2020, sec. 4.2): per seed, the 15,625 cells are split at random
into a training pool of 7,813 and a test set of the other 7,812. A predictor is trained on
the first ``fraction`` of a random order of the pool (0.1% = 8 cells ... 10% = 781) with
``<dataset>_valid`` as target and ranks the whole test set; reported are Kendall's tau,
Spearman's rho and precision at the top 5% (archsearch.diagnostics), mean ± std over
seeds, next to GATES' published Kendall's tau (the anchor).

    python benchmarks/predictors.py --predictors gates,mlp-ensemble,gp,lightgbm \
        --fractions 0.001,0.005,0.01,0.05,0.1 --seeds 5 --dataset cifar10

Measured (GATES predictor defaults, seeds 0..4, 1 thread): Kendall's tau 0.452 / 0.617 /
0.707 / 0.853 / 0.872 at 0.1 / 0.5 / 1 / 5 / 10%, against the anchor's 0.431 / 0.670 /
0.757 / 0.858 / 0.882.

``--ask-overhead`` instead times the model-based strategies' proposals (``ask()``) after
100 and 1,000 stored evaluations, the overhead a search adds to each real evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

DEFAULT_TABLE = Path(__file__).resolve().parents[1].parent / "shared/data/nb201/nb201.csv"
POOL = 7_813
#: GATES on NAS-Bench-201, Kendall's tau at each training fraction of the pool
ANCHOR = {0.001: 0.431, 0.005: 0.670, 0.01: 0.757, 0.05: 0.858, 0.1: 0.882}
DEFAULT_PREDICTORS = "gates,mlp-ensemble,gp,lightgbm"


def split(seed: int, fraction: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Training indices (a fraction of a random half) and test indices (the other half)."""
    order = np.random.default_rng(seed).permutation(size)
    pool, test = order[:POOL], order[POOL:]
    n = max(2, int(round(fraction * POOL)))
    return pool[:n], test


def run_one(task: tuple[str, str, str, dict, float, int]) -> dict:
    """Train one predictor on one split; returns its ranking metrics on the test set."""
    import torch

    torch.set_num_threads(1)  # one core per worker; the script, not the library, decides
    from archsearch.diagnostics import kendall_tau, precision_at_top, spearman_rho
    from archsearch.predict import make_predictor
    from archsearch.tables import load_nb201_table

    table_path, column, name, options, fraction, seed = task
    table = load_nb201_table(table_path)
    space = table.space
    truth = table.column(column)
    archs = [space.from_index(i) for i in range(len(truth))]
    train, test = split(seed, fraction, len(truth))
    predictor = make_predictor(name, space, seed=seed, **options)
    start = time.perf_counter()
    predictor.fit([archs[i] for i in train], truth[train])
    fit_seconds = time.perf_counter() - start
    estimate = predictor.predict([archs[i] for i in test])
    return {
        "predictor": name,
        "fraction": fraction,
        "seed": seed,
        "n_train": len(train),
        "kendall": kendall_tau(estimate, truth[test]),
        "spearman": spearman_rho(estimate, truth[test]),
        "precision_top5": precision_at_top(estimate, truth[test], 0.05),
        "fit_seconds": fit_seconds,
    }


def ask_overhead(table_path: str, column: str, strategies: list[str], sizes=(100, 1000)) -> None:
    """Milliseconds per ``ask()`` of each strategy with ``sizes`` results already told.

    The first ask after the stored results fits the model from scratch; the asks after that
    each follow one new result, as in a sequential search, and refresh the model. Wall and
    CPU time are both printed: on a shared machine the wall time mostly measures the queue.
    """
    import torch

    torch.set_num_threads(1)
    from archsearch.strategy import make_strategy
    from archsearch.tables import load_nb201_table

    table = load_nb201_table(table_path)
    truth = table.column(column)
    print(
        f"{'strategy':<20} {'stored':>6}  {'first ask (fit): wall / CPU ms':>30}"
        f"  {'ask per new result: wall / CPU ms':>34}"
    )
    for name in strategies:
        for size in sizes:
            order = np.random.default_rng(0).permutation(len(truth))
            strategy = make_strategy(name, table.space, seed=0)
            for i in order[:size]:
                strategy.tell(table.space.from_index(int(i)), float(truth[i]))
            wall, cpu = time.perf_counter(), time.process_time()
            arch = strategy.ask()
            first = time.perf_counter() - wall, time.process_time() - cpu
            walls, cpus = [], []
            for _ in range(10):
                strategy.tell(arch, float(truth[table.space.index(arch)]))
                wall, cpu = time.perf_counter(), time.process_time()
                arch = strategy.ask()
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            print(
                f"{name:<20} {size:>6}  {first[0] * 1e3:>21.0f} / {first[1] * 1e3:<6.0f}"
                f"  {np.mean(walls) * 1e3:>23.0f} / {np.mean(cpus) * 1e3:<6.0f}"
                f" (± {np.std(cpus) * 1e3:.0f})"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictors", default=DEFAULT_PREDICTORS)
    parser.add_argument("--fractions", default=",".join(str(f) for f in ANCHOR))
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    harness.add_common(
        parser,
        seeds=5,
        first_seed=True,
        workers=min(2, os.cpu_count() or 1),
        cache=True,
        seeds_help="seeds 0..N-1",
    )
    parser.add_argument(
        "--options", default="{}", help='JSON per predictor, e.g. \'{"gates": {"epochs": 100}}\''
    )
    parser.add_argument(
        "--ask-overhead",
        metavar="STRATEGIES",
        help="time ask() of these strategies (e.g. bananas,predictor-evolution) instead",
    )
    args = parser.parse_args(argv)
    with harness.json_mode(args):
        results = run(args)
    harness.write_json(args.json, results)  # every run's metrics (a list), as before


def run(args: argparse.Namespace) -> list[dict] | None:
    """The benchmark, printed; every run's metrics (None for ``--ask-overhead``)."""
    from archsearch.tables import load_nb201_table
    from archsearch.tables.nb201 import dataset_name

    column = f"{dataset_name(args.dataset)}_valid"
    table = load_nb201_table(args.table)  # fail fast on a bad table
    names = [p for p in args.predictors.split(",") if p]
    fractions = [float(f) for f in args.fractions.split(",") if f]
    options = json.loads(args.options)
    seeds = list(harness.seed_range(args))
    if args.ask_overhead:
        harness.header(None, f"1 torch thread; told {column} of random cells")
        ask_overhead(args.table, column, [s for s in args.ask_overhead.split(",") if s])
        return None
    harness.header(args, f"seeds {seeds[0]}..{seeds[-1]}; target {column}; pool {POOL}, test 7,812")
    from archsearch.diagnostics import kendall_tau

    test_column = column.replace("_valid", "_test")
    noise = kendall_tau(table.column(column), table.column(test_column))
    print(f"noise scale: Kendall's tau between the table's {column} and {test_column}: {noise:.3f}")
    tasks = [
        (args.table, column, name, options.get(name, {}), fraction, seed)
        for name in names
        for fraction in fractions
        for seed in seeds
    ]
    # a finished run is kept in --cache (JSON lines) and not redone; its options are part of
    # the key, so another --options runs afresh
    cache = harness.Cache(args.cache, key=("predictor", "options", "fraction", "seed"))
    keys = [(t[2], json.dumps(t[3], sort_keys=True), t[4], t[5]) for t in tasks]
    todo = [t for t, k in zip(tasks, keys, strict=True) if cache.get(*k) is None]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for task, result in zip(todo, pool.map(run_one, todo), strict=True):
            cache.add({**result, "options": json.dumps(task[3], sort_keys=True)})
    results = [{k: v for k, v in cache.get(*key).items() if k != "options"} for key in keys]
    print(f"wall time {time.perf_counter() - start:.0f} s\n")
    header = (
        f"{'predictor':<13} {'frac':>6} {'n':>4}  {'kendall tau':>13} {'anchor':>6}"
        f"  {'spearman rho':>13}  {'prec@5%':>13}  {'fit s':>6}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        for fraction in fractions:
            rows = [r for r in results if r["predictor"] == name and r["fraction"] == fraction]

            def stat(key: str, rows: list[dict] = rows) -> str:
                values = np.array([r[key] for r in rows])
                return f"{values.mean():.3f} ± {values.std():.3f}"

            anchor = ANCHOR.get(fraction)
            print(
                f"{name:<13} {fraction * 100:>5.1f}% {rows[0]['n_train']:>4}  {stat('kendall')}"
                f" {'' if anchor is None else f'{anchor:.3f}':>6}  {stat('spearman')}"
                f"  {stat('precision_top5')}  {np.mean([r['fit_seconds'] for r in rows]):>6.2f}"
            )
    print("\nmean ± std over seeds (population std); anchor: GATES' published Kendall's tau")
    return results


if __name__ == "__main__":
    main()
