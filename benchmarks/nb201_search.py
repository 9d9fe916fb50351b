"""Search strategies on the NAS-Bench-201 table: the benchmark's protocol, many seeds, with
Optuna's TPE run beside them as the baseline a user would reach for.

Each run searches on ``<dataset>_valid`` and, after each query, records the ``<dataset>_test``
accuracy of the architecture it would return (the best by validation so far). One run of
``max(--budget)`` queries gives every smaller budget too, as the prefix of its trajectory:
what a user who stopped the same search earlier would have got. Prints, per dataset,
strategy and budget, mean ± std over seeds, and the wall time; ``--plot`` draws best-so-far
test accuracy against queries; ``--cache`` keeps every finished run (JSON lines), so an
interrupted benchmark resumes where it stopped.

``tpe`` is Optuna's ``TPESampler`` (its defaults, seeded with the run's seed) over the six
edges as categorical parameters, one query per trial, repeats included: the benchmark counts
queries, not distinct architectures. ``all`` names every black-box strategy registered;
the training-free ones (naswot, tenas, warmstart) have their own benchmark,
``benchmarks/training_free.py``.

    python benchmarks/nb201_search.py --strategies random,evolution,local \
        --dataset cifar10 --budget 100 --seeds 100 --table ../shared/data/nb201/nb201.csv
    python benchmarks/nb201_search.py --strategies all,tpe --dataset cifar10,cifar100,imagenet16 \
        --budget 25,50,100,200 --seeds 100 --cache runs/nb201_search.jsonl \
        --plot benchmarks/results/nb201_search.png
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

DEFAULT_TABLE = Path(__file__).resolve().parents[1].parent / "shared/data/nb201/nb201.csv"
TRAINING_FREE = {"naswot", "tenas", "warmstart"}
#: test accuracy of the best-by-validation architecture: Optuna 5.0 TPE (100 seeds), the
#: published REA, and the ceiling (the best-by-validation architecture of the whole table)
REFERENCE = {
    "TPE @50 (Optuna 5.0)": {"cifar10": 93.87, "cifar100": 72.44, "imagenet16": 46.05},
    "TPE @100 (Optuna 5.0)": {"cifar10": 94.04, "cifar100": 73.05, "imagenet16": 46.37},
    "REA @100 (published)": {"cifar10": 93.92, "cifar100": 71.84, "imagenet16": 45.54},
    "target @50": {"cifar10": 94.15, "cifar100": 73.00, "imagenet16": 46.30},
    "target @100": {"cifar10": 94.25, "cifar100": 73.35, "imagenet16": 46.42},
    "ceiling": {"cifar10": 94.30, "cifar100": 73.48, "imagenet16": 46.44},
}

Task = tuple[str, str, str, int, int]  # table, dataset, strategy, seed, queries


def run_one(task: Task) -> tuple[Task, list[float], float]:
    """One search: the test accuracy of its best-by-validation pick after each query, and the
    seconds the search took (wall time in a one-thread worker)."""
    start = time.perf_counter()
    return task, search(task), time.perf_counter() - start


def search(task: Task) -> list[float]:
    import torch

    torch.set_num_threads(1)  # one core per worker: the benchmark, not the library, decides
    table, dataset, strategy, seed, queries = task
    if strategy == "tpe":
        return run_tpe(table, dataset, seed, queries)
    from archsearch.study import Study

    config = {
        "space": {"name": "nb201"},
        "strategy": {"name": strategy},
        "evaluator": {"name": "nb201-table", "table": table, "dataset": dataset},
        "seed": seed,
        "budget": {"evaluations": queries, "seconds": None},
    }
    study = Study.from_config(config)
    study.optimize(progress=False)
    return [step["best_reported"] for step in study.trajectory()]


def run_tpe(table_path: str, dataset: str, seed: int, queries: int) -> list[float]:
    """Optuna's TPE on the same table, queries and protocol as archsearch's strategies."""
    import optuna

    from archsearch.tables import load_nb201_table

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = load_nb201_table(table_path)
    space = table.space
    valid, test = table.column(f"{dataset}_valid"), table.column(f"{dataset}_test")

    def objective(trial: optuna.Trial) -> float:
        choices = {
            d.label: trial.suggest_categorical(d.label, list(d.choices)) for d in space.decisions
        }
        index = space.index(space.make(choices))
        trial.set_user_attr("test", float(test[index]))
        return float(valid[index])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=queries)
    best_valid, best_test, curve = -np.inf, np.nan, []
    for trial in study.trials:
        if trial.value > best_valid:  # ties keep the earlier pick, as a Study does
            best_valid, best_test = trial.value, trial.user_attrs["test"]
        curve.append(best_test)
    return curve


def load_cache(path: Path | None) -> harness.Cache:
    """Finished runs from a previous invocation, keyed by (dataset, strategy, seed); of two
    runs with the same key the longer is kept (its prefix is the shorter one)."""
    return harness.Cache(
        path,
        key=("dataset", "strategy", "seed"),
        prefer=lambda old, new: new if len(new["curve"]) > len(old["curve"]) else old,
    )


def plot(curves: dict, datasets: list[str], strategies: list[str], path: Path) -> None:
    """Mean best-so-far test accuracy against queries, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.5), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for strategy in strategies:
            shortest = min(len(c) for c in curves[dataset][strategy])
            runs = np.array([c[:shortest] for c in curves[dataset][strategy]])
            x = np.arange(1, shortest + 1)
            mean = runs.mean(axis=0)
            sem = runs.std(axis=0) / np.sqrt(len(runs))
            style = "--" if strategy in ("tpe", "random") else "-"
            ax.plot(x, mean, style, label=strategy, linewidth=1.4)
            ax.fill_between(x, mean - sem, mean + sem, alpha=0.15)
        ceiling = REFERENCE["ceiling"][dataset]
        ax.axhline(ceiling, color="black", linewidth=0.8, linestyle=":", label="ceiling")
        ax.set_xscale("log")
        ax.set_ylim(ceiling - 3.0, ceiling + 0.3)
        ax.set_title(f"NAS-Bench-201 {dataset} ({len(runs)} seeds)")
        ax.set_xlabel("queries")
        ax.set_ylabel("test accuracy of best-by-validation (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def strategy_names(spec: str) -> list[str]:
    from archsearch.components import build_components  # noqa: F401 (fills the registries)
    from archsearch.strategy import STRATEGIES

    names: list[str] = []
    for name in (s for s in spec.split(",") if s):
        if name == "all":
            names += [n for n in STRATEGIES.names() if n not in TRAINING_FREE]
        elif name == "tpe" or STRATEGIES.get(name):
            names.append(name)
    return list(dict.fromkeys(names))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="random,evolution,local", help="names, all, tpe")
    parser.add_argument("--dataset", default="cifar10", help="comma list of datasets")
    parser.add_argument("--budget", default="100", help="queries; comma list for several")
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    harness.add_common(parser, seeds=100, first_seed=True, workers=os.cpu_count() or 1, cache=True)
    parser.add_argument("--plot", type=Path, help="PNG of best-so-far accuracy vs queries")
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="run nothing new for a seed the cache has a shorter run of; such a run counts "
        "for the budgets it reaches (the table then says n=... for the others)",
    )
    args = parser.parse_args(argv)
    with harness.json_mode(args):
        report = run(args)
    harness.write_json(args.json, report)


def run(args: argparse.Namespace) -> dict:
    """The benchmark, printed; returns its figures for ``--json``."""
    from archsearch.tables import load_nb201_table
    from archsearch.tables.nb201 import dataset_name

    strategies = strategy_names(args.strategies)
    seeds = harness.seed_range(args)
    datasets = [dataset_name(d) for d in args.dataset.split(",") if d]
    budgets = sorted(int(b) for b in args.budget.split(","))
    queries = budgets[-1]
    load_nb201_table(args.table)  # fail fast on a bad table
    report = harness.header(
        args,
        f"seeds {seeds[0]}..{seeds[-1]}; search on <dataset>_valid, report <dataset>_test of"
        " the best-by-validation pick",
    )
    cache = load_cache(args.cache)
    curves = {d: {s: {} for s in strategies} for d in datasets}
    seconds = {d: {s: [] for s in strategies} for d in datasets}
    todo: list[Task] = []
    for dataset in datasets:
        for strategy in strategies:
            for seed in seeds:
                known = cache.get(dataset, strategy, seed)
                if known is None or (len(known["curve"]) < queries and not args.cached_only):
                    todo.append((args.table, dataset, strategy, seed, queries))
                else:
                    curves[dataset][strategy][seed] = known["curve"]
                    seconds[dataset][strategy].append(known["seconds"])
    print(f"{len(todo)} runs to do, {len(datasets) * len(strategies) * args.seeds - len(todo)}"
          f" from the cache")  # fmt: skip

    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for (_, dataset, strategy, seed, _), curve, took in pool.map(run_one, todo, chunksize=1):
            curves[dataset][strategy][seed] = curve
            seconds[dataset][strategy].append(took)
            row = {"dataset": dataset, "strategy": strategy, "seed": seed, "queries": queries}
            cache.add({**row, "seconds": took, "curve": curve})  # survives a kill
    total = time.perf_counter() - start

    runs = {d: {s: [curves[d][s][k] for k in sorted(curves[d][s])] for s in strategies}
            for d in datasets}  # fmt: skip
    report["results"] = {d: {s: {} for s in strategies} for d in datasets}
    for dataset in datasets:
        print(f"\n{dataset}: test accuracy (%) of the best-by-validation pick, mean ± std")
        print(
            f"{'strategy':<22}"
            + "".join(f"{f'{b} queries':>16}" for b in budgets)
            + f"{'s per run':>11}"
        )
        for strategy in strategies:
            cells = ""
            for b in budgets:
                values = np.array([c[b - 1] for c in runs[dataset][strategy] if len(c) >= b])
                count = "" if len(values) == len(seeds) else f" n={len(values)}"
                if len(values) == 0:
                    cells += f"{'-':>16}"
                    continue
                report["results"][dataset][strategy][b] = {
                    "mean": float(values.mean()),
                    "std": float(values.std()),
                    "n": len(values),
                }
                cells += f"{values.mean():>9.2f} ± {values.std():<4.2f}{count}".ljust(16)
            print(f"{strategy:<22}{cells}{np.mean(seconds[dataset][strategy]):>11.2f}")
            report["results"][dataset][strategy]["seconds_per_run"] = float(
                np.mean(seconds[dataset][strategy])
            )
        for label, figures in REFERENCE.items():
            print(f"  {label:<24}{figures[dataset]:.2f}")
    print(f"\ntotal wall time: {total:.1f} s")
    if args.plot:
        plot(runs, datasets, strategies, args.plot)
    report["total_seconds"] = round(total, 1)
    return report


if __name__ == "__main__":
    main()
