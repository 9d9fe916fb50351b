"""Write the parameters and FLOPs of all 15,625 NAS-Bench-201 networks to a packaged file.

Every architecture is **built**, not derived: ``NB201Space().build(arch, (3, 32, 32), 10)``
(the benchmark's C=16, N=5, CIFAR's input and classes), counted with
:func:`archsearch.hardware.cost.count_params` (trainable parameters) and
:func:`~archsearch.hardware.cost.count_flops` (one forward of one input; two FLOPs per
multiply-add, pooling not counted). Differencing per-operation costs would be faster, but
building every network means the file cannot disagree with the builder on any row, which is
what the table evaluator promises when it reports these values as if it had measured them.

Rows are in the benchmark's index order (``NB201Space.from_index``, i.e. the order of
``archsearch/space/nb201_index.txt.gz``, which is the ``index`` column of NAS-Bench-201's
own table). The output is ``index,params,flops`` as integers, gzipped with mtime 0 so the
same counts give the same bytes.

Each forward under the FLOP counter takes about 0.2 s on an idle core, so the whole build is
about 25 minutes on 2 idle cores; the committed file took 4,365 s (73 minutes) on 2 cores
shared with other work. It is byte-identical to the file that per-edge differencing (one
base network plus 24 one-edge networks, the counts being sums over edges) gives, which is
a second check on both. Usage::

    PYTHONPATH=. .venv/bin/python scripts/nb201_costs.py \
        --check ../shared/data/nb201/reference_costs.csv
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import multiprocessing
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "archsearch/tables/data/nb201_costs.csv.gz"
INPUT_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
SIZE = 5**6
CHUNK = 125


def _init_worker() -> None:
    import torch

    # two processes on two cores: more threads per process only contend
    torch.set_num_threads(1)


def costs(indices: list[int]) -> list[tuple[int, int, int]]:
    """``(index, params, flops)`` of the benchmark networks with these indices."""
    import torch

    from archsearch.hardware.cost import count_flops, count_params
    from archsearch.space.nb201 import NB201Space

    space = NB201Space()
    out = []
    for index in indices:
        torch.manual_seed(index)  # the counts depend on no weight; seeded anyway
        model = space.build(space.from_index(index), INPUT_SHAPE, NUM_CLASSES)
        out.append((index, count_params(model), count_flops(model, INPUT_SHAPE)))
    return out


def encode(rows: list[tuple[int, int, int]]) -> bytes:
    """The file's bytes: a CSV, gzipped with no timestamp or name, so bytes are reproducible."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["index", "params", "flops"])
    writer.writerows(rows)
    return gzip.compress(text.getvalue().encode(), compresslevel=9, mtime=0)


def build_all(workers: int, limit: int | None = None) -> list[tuple[int, int, int]]:
    indices = list(range(SIZE if limit is None else limit))
    chunks = [indices[i : i + CHUNK] for i in range(0, len(indices), CHUNK)]
    rows: list[tuple[int, int, int]] = []
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        for part in pool.imap(costs, chunks):  # imap keeps index order
            rows.extend(part)
            seconds = time.perf_counter() - started
            rate = len(rows) / seconds
            print(
                f"{len(rows)}/{len(indices)} built, {seconds:.0f} s, "
                f"~{(len(indices) - len(rows)) / rate:.0f} s left",
                flush=True,
            )
    return rows


def check_reference(rows: list[tuple[int, int, int]], reference: Path) -> bool:
    """Compare with published costs: parameters exactly (to the digits shown), FLOPs as the
    ratio of half our FLOPs (multiply-adds) to the published figure (which counts one per
    multiply-add and includes pooling, so it is slightly larger)."""
    from archsearch.space.nb201 import NB201Space

    space = NB201Space()
    by_index = {index: (params, flops) for index, params, flops in rows}
    ok = True
    with reference.open() as f:
        for r in csv.DictReader(f):
            index = space.index(space.from_string(r["arch"]))
            if index not in by_index:  # a --limit run
                continue
            params, flops = by_index[index]
            exact = f"{params / 1e6:.6f}" == f"{float(r['params_millions']):.6f}"
            ok &= exact
            ratio = flops / 2 / (float(r["flops_millions"]) * 1e6)
            print(
                f"{index:5d} params {params} vs {r['params_millions']}M "
                f"{'exact' if exact else 'DIFFERENT'}; flops {flops} "
                f"(MACs {flops // 2}) vs {r['flops_millions']}M: MACs/published {ratio:.5f}"
            )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, help="only the first N indices (a trial run)")
    parser.add_argument("--check", type=Path, help="reference_costs.csv to compare against")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = build_all(args.workers, args.limit)
    if args.limit is None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(encode(rows))
        print(f"wrote {len(rows)} rows to {args.out} in {time.perf_counter() - started:.0f} s")
    if args.check is not None:
        return 0 if check_reference(rows, args.check) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
