"""Real training in parallel: a Fashion-MNIST search with ``--workers 2`` against ``--workers 1``.

Each trial trains a small NAS-Bench-201 network on Fashion-MNIST with one torch thread (the
training evaluator's ``threads=1``, part of its recipe), so two workers on a 2-core machine
should take about half the wall time of one. Both searches run through the command line,
one after the other, as a user runs them; the figures are their wall times (the process
start, data loading in each worker and every commit included) and the ratio.

    python benchmarks/parallel_training.py --json benchmarks/results/parallel_training.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def search(workers: int, args: argparse.Namespace, directory: Path) -> dict:
    out = directory / f"workers{workers}"
    command = [
        sys.executable, "-m", "archsearch", "search", "--space", "nb201",
        "--space-opt", "channels=8", "--space-opt", "cells_per_stage=1",
        "--strategy", "evolution", "--evaluator", "train", "--dataset", "fashion-mnist",
        "--epochs", str(args.epochs), "--train-size", str(args.train_size),
        "--budget", str(args.budget), "--seed", "0", "--workers", str(workers),
        "--out", str(out), "--json",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"parallel_training.py: the search failed: {done.stderr.strip()[-500:]}")
    summary = json.loads(done.stdout)
    return {
        "wall_s": round(wall, 1),
        "evaluations": summary["n_evaluations"],
        "best_valid_accuracy": summary["best"]["objective"],
        "best_arch": summary["best"]["arch"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", dest="train_size", type=int, default=5000)
    harness.add_common(parser)
    args = parser.parse_args(argv)
    with harness.json_mode(args):
        harness.header(
            None,
            f"{args.budget} trials, {args.epochs} epoch(s) on {args.train_size} Fashion-MNIST "
            "images each, channels 8, 1 cell per stage, 1 torch thread per trial",
        )
        figures = {}
        with tempfile.TemporaryDirectory(prefix="archsearch-parallel-") as scratch:
            for workers in (1, 2):
                figures[workers] = search(workers, args, Path(scratch))
                row = figures[workers]
                print(
                    f"--workers {workers}: {row['wall_s']:.1f} s for {row['evaluations']} "
                    f"trials; best valid accuracy {row['best_valid_accuracy']:.2f}"
                )
                sys.stdout.flush()
        ratio = figures[2]["wall_s"] / figures[1]["wall_s"]
        figures["ratio_2_to_1"] = round(ratio, 3)
        print(f"wall time with 2 workers / with 1: {ratio:.3f} (ideal 0.5)")
    harness.write_json(args.json, figures)


if __name__ == "__main__":
    main()
