"""Parallel efficiency of a study's workers: wall time, throughput and per-trial overhead.

The load is synthetic: the ``sleep`` evaluator makes each evaluation wait ``--eval-seconds``
using no CPU, so that 16 workers can be measured on a 2-core machine; what is measured is
what archsearch adds around the evaluations (starting the workers, proposing, sending a
job, committing its result to the study file, telling the strategy), which is the same
whatever the evaluation costs. Each run is a whole search through ``Study.optimize`` with
its SQLite study file, random search over NAS-Bench-201 names, ``--trials`` evaluations.

* efficiency = (trials x eval-seconds / workers) / wall seconds: 1 is perfect scaling;
* overhead_ms = (wall x workers - trials x eval-seconds) / trials: worker time per trial
  spent on anything but evaluating, start-up of the workers included.

The process backend's wall time includes starting its worker processes (each search starts
its own). Ray's cluster outlives searches, so ``ray.init`` is done once, before any timing,
with as many logical CPUs as the most workers measured, and one untimed warm-up search lets
Ray's worker processes import archsearch; every timed Ray search then starts from a running
cluster, as it does for a user.

    python benchmarks/scaling.py --backend process,ray --workers 1,2,4,8,16 --trials 64 \\
        --eval-seconds 1 --json benchmarks/results/scaling.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import harness

from archsearch.parallel import Execution
from archsearch.study import Study

#: the issue's target: parallel efficiency at 8 workers for 1-second evaluations
TARGET = {"workers": 8, "efficiency": 0.9}


def search(backend: str, workers: int, trials: int, seconds: float) -> float:
    """Wall seconds of one search of ``trials`` evaluations on ``workers`` workers."""
    config = {
        "space": {"name": "nb201"},
        "strategy": {"name": "random"},
        "evaluator": {"name": "sleep", "seconds": seconds},
        "seed": workers,
        "budget": {"evaluations": trials},
    }
    execution = Execution(workers=workers, ray="auto" if backend == "ray" else None)
    with tempfile.TemporaryDirectory(prefix="archsearch-scaling-") as directory:
        study = Study.from_config(config, Path(directory) / "study")
        started = time.perf_counter()
        study.optimize(execution=execution)
        wall = time.perf_counter() - started
        assert study.n_finished == trials and all(t.status == "complete" for t in study.trials)
        study.close()
    return wall


def start_ray(workers: int) -> None:
    from archsearch.parallel.ray_cluster import import_ray

    ray = import_ray()
    ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    # untimed: one sleeping task per worker, so that every Ray worker process starts and
    # imports archsearch (tasks that return at once would all run on one or two of them)
    search("ray", workers, workers, 1.0)


def measure(args: argparse.Namespace) -> dict:
    backends = [b for b in args.backend.split(",") if b]
    counts = [int(w) for w in args.workers.split(",") if w]
    unknown = set(backends) - {"process", "ray"}
    if unknown:
        sys.exit(f"scaling.py: unknown backend {sorted(unknown)[0]!r}: process, ray")
    header = harness.header(
        None,
        f"{args.trials} trials of {args.eval_seconds:g} s sleep (synthetic load); random "
        "search on nb201; SQLite study file",
    )
    figures: dict = {}
    for backend in backends:
        if backend == "ray":
            start_ray(max(counts))
        figures[backend] = {}
        print(f"\n{backend:<8} {'workers':>7} {'wall s':>8} {'trials/s':>9} {'efficiency':>10} "
              f"{'overhead ms':>11}")  # fmt: skip
        for workers in counts:
            wall = search(backend, workers, args.trials, args.eval_seconds)
            ideal = args.trials * args.eval_seconds / workers
            row = {
                "wall_s": round(wall, 3),
                "throughput": round(args.trials / wall, 3),
                "efficiency": round(ideal / wall, 4),
                "overhead_ms": round((wall * workers - ideal * workers) / args.trials * 1e3, 1),
            }
            figures[backend][workers] = row
            print(
                f"{'':<8} {workers:>7} {row['wall_s']:>8.2f} {row['throughput']:>9.2f} "
                f"{row['efficiency']:>10.3f} {row['overhead_ms']:>11.1f}"
            )
            sys.stdout.flush()
    for backend, rows in figures.items():
        at = rows.get(TARGET["workers"])
        if at is not None:
            met = at["efficiency"] >= TARGET["efficiency"]
            print(
                f"target {backend}: efficiency {at['efficiency']:.3f} at {TARGET['workers']} "
                f"workers (>= {TARGET['efficiency']}): {'met' if met else 'NOT met'}"
            )
    return {"header": header, **figures}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="process,ray", help="process, ray or both")
    parser.add_argument("--workers", default="1,2,4,8,16", help="worker counts, comma-separated")
    parser.add_argument("--trials", type=int, default=64, help="evaluations per search")
    parser.add_argument("--eval-seconds", dest="eval_seconds", type=float, default=1.0)
    harness.add_common(parser)
    args = parser.parse_args(argv)
    with harness.json_mode(args):
        figures = measure(args)
    figures.pop("header")
    harness.write_json(args.json, figures)


if __name__ == "__main__":
    main()
