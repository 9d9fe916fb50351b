"""Build the Fashion-MNIST ground-truth table: a fixed, seeded sample of NAS-Bench-201 cells,
each trained with one documented recipe.

CIFAR cannot be had on these machines, so data-dependent proxies and predictors are checked
against this table instead (see ``archsearch/tables/fmnist.py`` for the columns).

The sample is the first ``--size`` entries of one seeded permutation of the 15,625 benchmark
indices (``numpy.random.default_rng(SAMPLE_SEED).permutation(15625)``, SAMPLE_SEED = 0), so
the architectures are the same on every run and a larger table extends a smaller one. Each
architecture trains with seed = its NAS-Bench-201 index, so any row can be re-made alone.

Recipes (a study-configuration fragment: the space and the evaluator that train each cell):

* ``cpu``: C=8, N=1 network, 4,000 training images (a fixed subset of the 60,000),
  2 epochs of SGD (Nesterov, lr 0.05, cosine, batch 64), validation on 3,000 held-out
  training images, test on 3,000 images of the official test split. About 10 CPU seconds
  per cell on this project's machines, so 300 cells take about 50 CPU minutes.
* ``cpu-long``: the ``cpu`` network and splits with 8,000 training images and 4 epochs:
  about four times the cost (all 300 cells: ``data/fmnist_nb201_long.csv``, about 100
  CPU-minutes), for checking whether a ranking follows longer training rather than the
  2-epoch figures (``benchmarks/results/supernet_vs_tables.txt``).
* ``gpu``: the benchmark's network (C=16, N=5), all 50,000/10,000 train/valid images and the
  full 10,000-image test split, 12 epochs: for when a GPU is lent.

The recipes, the sample and the resumable append live in :mod:`archsearch.tables.build`;
this script is its command line. The builder resumes: rows already in ``--out`` are
skipped, each new row is appended with one write and flushed to disk before the next
architecture starts, and a half-written last line (a killed run) is dropped on the next
start. ``--start``/``--limit`` fill the table in over
several runs. Run it as::

    nohup python benchmarks/build_fmnist_table.py --recipe cpu --size 300 \
        --out data/fmnist_nb201.csv > build_fmnist.log 2>&1 &
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from archsearch.errors import ArchsearchError  # noqa: E402
from archsearch.tables.build import (  # noqa: E402, F401 (the names the script used to define)
    RECIPES,
    SAMPLE_SEED,
    append_row,
    build_table,
    read_done,
    recipe_json,
    sample_indices,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "data" / "fmnist_nb201.csv"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="cpu", choices=sorted(RECIPES))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--size", type=int, default=300, help="architectures in the sample")
    parser.add_argument("--start", type=int, default=0, help="first sample position to train")
    parser.add_argument("--limit", type=int, default=None, help="train at most this many")
    harness.add_common(parser, threads=1)
    parser.add_argument(
        "--seed-offset",
        type=int,
        default=0,
        help="train with seed = index + K (a replicate table, into another --out)",
    )
    args = parser.parse_args(argv)
    if args.seed_offset < 0:
        parser.error(f"--seed-offset must be >= 0, got {args.seed_offset}")

    import torch

    torch.set_num_threads(args.threads)
    with harness.json_mode(args):
        report = harness.header(
            args,
            f"sample seed {SAMPLE_SEED}; seed offset {args.seed_offset}; recipe {args.recipe}:"
            f" {recipe_json(RECIPES[args.recipe])}",
            recipe=RECIPES[args.recipe],
            seed_offset=args.seed_offset,
            out=args.out,
        )
        try:
            report.update(build(args))
        except ArchsearchError as exc:  # a table of another recipe or seed offset, ...
            raise SystemExit(str(exc)) from None
    harness.write_json(args.json, report)


def build(args: argparse.Namespace) -> dict[str, float]:
    """Fill the table as the flags say; the rows written and the seconds, for ``--json``."""
    started = time.perf_counter()
    written = build_table(
        args.out,
        RECIPES[args.recipe],
        size=args.size,
        start=args.start,
        limit=args.limit,
        seed_offset=args.seed_offset,
        log=lambda line: print(line, flush=True),
    )
    seconds = time.perf_counter() - started
    print(f"wrote {written} rows in {seconds:.0f} s", flush=True)
    return {"written": written, "seconds": round(seconds, 1)}


if __name__ == "__main__":
    main()
