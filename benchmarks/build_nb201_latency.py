"""Measure the NAS-Bench-201 hardware table: PyTorch and ONNX Runtime CPU latency and peak
forward memory of all 15,625 networks (``data/nb201_latency.csv``).

Protocol (:func:`archsearch.hardware.protocol.measure_network`): the benchmark's network
(C=16, N=5, 3x32x32 input, 10 classes) built with ``torch.manual_seed(index)``, eval mode,
batch 1, one thread (``taskset`` pins the process to one core when the machine is shared),
on this project's 2-core machine class. PyTorch latency: ``Timer.adaptive_autorange``
(warm-up, timed blocks until the inter-quartile range is within 10% of the median or 1 s has
passed), median and IQR stored. ONNX Runtime: the same protocol on the ``torch.onnx`` export
in a one-thread CPU session with every graph optimisation. Peak memory: weights and buffers
plus the most bytes the forward pass holds at once (``torch.profiler``).

Architectures are measured in one seeded random order (``default_rng(0).permutation``), not
index order, so that any drift of the machine over the hours the table takes spreads over
the whole space instead of biasing one corner of it. The noise of the figures (the same
networks re-measured in separate processes) is measured by ``benchmarks/latency_noise.py``.

Resuming: rows go to ``--partial`` one write each (a killed run loses at most the row it was
measuring; a half-written last line is dropped on the next start); ``--limit`` measures that
many more and stops. When every architecture has a row, the table is written to ``--out``
sorted by benchmark index. Run it as::

    nohup taskset -c 1 python benchmarks/build_nb201_latency.py > nb201_latency.log 2>&1 &
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "data" / "nb201_latency.csv"
DEFAULT_PARTIAL = ROOT / "runs" / "nb201_latency.partial.csv"
COLUMNS = (
    "arch",
    "latency_ms",
    "latency_iqr_ms",
    "onnx_latency_ms",
    "onnx_latency_iqr_ms",
    "peak_memory_mb",
)
SPACE_SIZE = 5**6


def read_partial(path: Path) -> dict[str, list[str]]:
    """Rows measured so far, by architecture, after dropping a half-written last line."""
    if not path.exists():
        return {}
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            f.truncate(cut)
            data = data[:cut]
    rows = list(csv.reader(data.decode().splitlines()))
    if not rows:
        return {}
    if tuple(rows[0]) != COLUMNS:
        sys.exit(f"{path}: unexpected header {rows[0]}; expected {list(COLUMNS)}")
    return {row[0]: row for row in rows[1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--partial", type=Path, default=DEFAULT_PARTIAL)
    parser.add_argument("--limit", type=int, default=None, help="measure at most this many")
    parser.add_argument("--max-run-time", type=float, default=1.0)
    args = parser.parse_args()

    import torch

    from archsearch.hardware.protocol import measure_network
    from archsearch.space.nb201 import NB201Space

    torch.set_num_threads(1)
    space = NB201Space()
    done = read_partial(args.partial)
    args.partial.parent.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(0).permutation(SPACE_SIZE)
    todo = [int(i) for i in order if space.to_string(space.from_index(int(i))) not in done]
    if args.limit is not None:
        todo = todo[: args.limit]
    print(f"{len(done)} measured, {len(todo)} to measure now", flush=True)
    started = time.perf_counter()
    with open(args.partial, "a", newline="") as f:
        if f.tell() == 0:
            f.write(",".join(COLUMNS) + "\n")
        for count, index in enumerate(todo, start=1):
            arch = space.from_index(index)
            torch.manual_seed(index)
            model = space.build(arch, (3, 32, 32), 10)
            values = measure_network(
                model, (3, 32, 32), COLUMNS[1:], max_run_time=args.max_run_time
            )
            f.write(",".join([space.to_string(arch)] + [f"{values[c]:.6g}" for c in COLUMNS[1:]]))
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
            if count % 100 == 0:
                rate = (time.perf_counter() - started) / count
                print(f"{count}/{len(todo)}  {rate:.3f} s each", flush=True)
    rows = read_partial(args.partial)
    if len(rows) == SPACE_SIZE:
        ranked = sorted(rows.values(), key=lambda row: space.index(space.from_string(row[0])))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(ranked)
        print(f"wrote {args.out} ({SPACE_SIZE} rows)")
    else:
        print(f"{len(rows)}/{SPACE_SIZE} measured; run again to go on")


if __name__ == "__main__":
    main()
