"""The proposals of every black-box strategy on the NAS-Bench-201 table, recorded and checked.

``benchmarks/reference/nb201_trajectories.jsonl`` holds, for each strategy, dataset and seed
(0-2; 200 queries, 100 for the two model-based strategies), the architectures a study asked
for, in order, and its best-so-far test accuracy, as recorded with the first release before
the Core v2 redesign. A refactoring keeps figures: ``--check`` re-runs every row with the
code as it is now and reports any row whose proposals differ (``tests/test_reference.py``
checks a prefix of a few rows on every test run). The model-based strategies train torch
predictors, whose results depend on the CPU's instruction set: their rows recorded on other
CPUs are in ``nb201_trajectories_other_cpus.jsonl``, and a run must match one of them.

    python benchmarks/reference_trajectories.py --check
    python benchmarks/reference_trajectories.py --record runs/nb201_trajectories.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "benchmarks" / "reference" / "nb201_trajectories.jsonl"
#: the model-based strategies' trajectories as other CPUs give them (each row names its
#: ``cpu``): their predictors train in torch, whose CPU kernels round differently on
#: different instruction sets (AVX2 / AVX-512), so a ranking tie can break the other way and
#: the proposals part after a few dozen queries; the same code gives one of these, bit for bit
OTHER_CPUS = REFERENCE.with_name("nb201_trajectories_other_cpus.jsonl")
TABLE = ROOT.parent / "shared" / "data" / "nb201" / "nb201.csv"
STRATEGIES = [
    "random", "evolution", "local", "reinforce", "hyperband", "bohb", "bananas",
    "predictor-evolution",
]  # fmt: skip
MODEL_BASED = {"bananas", "predictor-evolution"}


def run(strategy: str, dataset: str, seed: int, queries: int, table: str = str(TABLE)) -> dict:
    """One study on the table: its proposals, fidelities and best-so-far test accuracy."""
    from archsearch.study import Study

    config = {
        "space": {"name": "nb201"},
        "strategy": {"name": strategy},
        "evaluator": {"name": "nb201-table", "table": table, "dataset": dataset},
        "seed": seed,
        "budget": {"evaluations": queries, "seconds": None},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Hyperband on a table warns, as it should
        study = Study.from_config(config)
        study.optimize()
    trials = sorted(study.trials, key=lambda t: t.number)
    return {
        "strategy": strategy, "dataset": dataset, "seed": seed, "queries": queries,
        "archs": [t.arch for t in trials], "fidelities": [t.fidelity for t in trials],
        "best_reported": [s["best_reported"] for s in study.trajectory()],
    }  # fmt: skip


def _run_row(task: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    return run(*task)


def reference_rows(path: Path = REFERENCE) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def references(key: tuple[str, str, int]) -> list[dict]:
    """Every recorded trajectory of (strategy, dataset, seed): the first release's, and for
    a model-based strategy those recorded on other CPUs."""
    rows = reference_rows() + (reference_rows(OTHER_CPUS) if OTHER_CPUS.exists() else [])
    return [r for r in rows if (r["strategy"], r["dataset"], r["seed"]) == key]


def same(want: dict, got: dict, queries: int | None = None) -> bool:
    """Whether ``got`` proposes, at the same fidelities, with the same best so far, what
    ``want`` recorded (its first ``queries`` only, when given)."""
    keys = ("archs", "fidelities", "best_reported")
    return all(got[k] == want[k][:queries] for k in keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="write a new reference file here")
    parser.add_argument("--check", action="store_true", help="re-run the reference rows")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.record:
        tasks = [
            (s, d, seed, 100 if s in MODEL_BASED else 200)
            for s in STRATEGIES
            for d in ("cifar10", "cifar100", "imagenet16")
            for seed in range(3)
        ]
        with ProcessPoolExecutor(args.workers) as pool, open(args.record, "w") as out:
            for row in pool.map(_run_row, tasks):
                out.write(json.dumps(row) + "\n")
        return 0
    rows = reference_rows()
    tasks = [(r["strategy"], r["dataset"], r["seed"], r["queries"]) for r in rows]
    differ = 0
    with ProcessPoolExecutor(args.workers) as pool:
        for want, got in zip(rows, pool.map(_run_row, tasks), strict=True):
            key = (want["strategy"], want["dataset"], want["seed"])
            match = next((r for r in references(key) if same(r, got)), None)
            differ += match is None
            status = (
                "DIFFERENT" if match is None else f"identical ({match.get('cpu', 'first release')})"
            )
            print(f"{key[0]:>20} {key[1]:>10} seed {key[2]}: {status}")
    print(f"{len(rows) - differ} of {len(rows)} trajectories identical to the reference")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
