"""The study's own cost per step, as a study grows: milliseconds per trial spent outside the
evaluator (proposal, storage, bookkeeping), with a free evaluator and random search.

The first release re-read and sorted every stored trial twice per step, so its step cost
grew with the study (0.8 ms per trial over the first trials, 7.2 ms at 6,000 in an audit);
a step now reads no stored trial. Per block of ``--block`` trials, the mean step time is
printed for an in-memory and an SQLite study side by side (SQLite commits each trial, so
its figure is the cost of durability on this disk).

    python benchmarks/step_overhead.py --trials 6000 --block 1000 [--json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import harness

from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.space.nb201 import NB201Space
from archsearch.strategy import make_strategy
from archsearch.study import SQLiteStorage, Storage, Study


class Free(Evaluator):
    """Costs nothing, so that what is timed is the study alone."""

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        return EvalResult({"objective": float(seed % 97)})


def block_times(storage: Storage, trials: int, block: int) -> list[float]:
    """Mean milliseconds per step in each block of ``block`` steps."""
    space = NB201Space()
    study = Study(space, make_strategy("random", space, seed=0), Free(), storage=storage)
    means = []
    for done in range(block, trials + 1, block):
        started = time.perf_counter()
        study.optimize(n_evaluations=done)
        means.append(1000.0 * (time.perf_counter() - started) / block)
    study.close()
    return means


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6000)
    parser.add_argument("--block", type=int, default=1000)
    harness.add_common(parser)
    args = parser.parse_args(argv)
    with harness.json_mode(args):
        info = harness.header(args, settings=f"{args.trials} trials, blocks of {args.block}")
        memory = block_times(Storage(), args.trials, args.block)
        with tempfile.TemporaryDirectory() as tmp:
            disk = block_times(SQLiteStorage.create(Path(tmp) / "s.db"), args.trials, args.block)
        print(f"{'trials':>12} {'memory ms/step':>15} {'sqlite ms/step':>15}")
        for i, (m, d) in enumerate(zip(memory, disk, strict=True)):
            print(f"{i * args.block + 1:>5}-{(i + 1) * args.block:<6} {m:>15.3f} {d:>15.3f}")
    harness.write_json(args.json, {**info, "memory_ms": memory, "sqlite_ms": disk})


if __name__ == "__main__":
    main()
