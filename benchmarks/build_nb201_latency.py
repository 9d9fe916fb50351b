"""Measure the NAS-Bench-201 hardware table: PyTorch and ONNX Runtime CPU latency and peak
forward memory of all 15,625 networks (``data/nb201_latency.csv``).

Protocol: the benchmark's network (C=16, N=5, 3x32x32 input, 10 classes) built with
``torch.manual_seed(index)``, eval mode, batch 1, one thread (``taskset`` pins the process
to one core), on this project's 2-core machine class. The speed of this (virtual) machine
drifts over seconds to minutes (``benchmarks/latency_noise.py``), so networks are timed
ten at a time in three
interleaved rounds, each round opened and closed by a fixed reference network, and stored
as their ratio to it (:func:`archsearch.hardware.protocol.interleaved_latencies`);
``latency_ms`` is that ratio times the reference's median over the whole build, and
``latency_iqr_ms`` the ratio's inter-quartile range over the rounds, on the same scale.
PyTorch: eager, ``torch.no_grad``. ONNX Runtime: the ``torch.onnx`` export in a one-thread
CPU session with every graph optimisation, against the reference's own session. Peak
memory: weights and buffers plus the most bytes the forward pass holds at once
(``torch.profiler``). The reference is ``NB201Space().distinct_samples(default_rng(10**6),
1)``, the one ``benchmarks/latency_models.py`` measures against.

Architectures are measured in one seeded random order (``default_rng(0).permutation``), not
index order, so that any drift of the machine over the hours the table takes spreads over
the whole space instead of biasing one corner of it. The noise of the figures (the same
networks re-measured in separate processes) is measured by ``benchmarks/latency_noise.py``.

Resuming: rows go to ``--partial`` one write per chunk of ten (a killed run loses at most
that chunk; a half-written last line is dropped on the next start); ``--limit`` measures that
many more and stops; ``--reverse`` walks the order from its end, so that a second builder
(on the other core, appending to the same file: each chunk is one small write) meets the
first in the middle. The partial file is committed (``data/nb201_latency.partial.csv``), so a
build spread over several sessions on fresh checkouts resumes where the last one stopped; the
reference's own time is stored per chunk, so chunks measured on two machines of the same
class are put on one scale when the table is written. When every architecture has a row,
the table is written to ``--out`` sorted by benchmark index, and gzipped beside
:mod:`archsearch.tables.nb201` for the package to ship. Run it as::

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

from archsearch.hardware.figures import FIGURES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "data" / "nb201_latency.csv"
DEFAULT_PARTIAL = ROOT / "data" / "nb201_latency.partial.csv"
#: the copy the package ships (:func:`archsearch.tables.nb201.nb201_hardware`)
PACKAGED = ROOT / "archsearch" / "tables" / "data" / "nb201_latency.csv.gz"
COLUMNS = ("arch", *FIGURES)
#: what the partial file holds: ratios to the reference, and the reference's ms per chunk
PARTIAL = (
    "arch",
    "latency_ratio",
    "latency_iqr_ratio",
    "onnx_ratio",
    "onnx_iqr_ratio",
    "peak_memory_mb",
    "reference_ms",
    "onnx_reference_ms",
)
CHUNK = 10
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
    if tuple(rows[0]) != PARTIAL:
        sys.exit(f"{path}: unexpected header {rows[0]}; expected {list(PARTIAL)}")
    return {row[0]: row for row in rows[1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--partial", type=Path, default=DEFAULT_PARTIAL)
    parser.add_argument("--limit", type=int, default=None, help="measure at most this many")
    parser.add_argument(
        "--reverse", action="store_true",
        help="walk the order from its end: a second builder on the other core, same --partial",
    )  # fmt: skip
    args = parser.parse_args()

    import torch

    from archsearch.hardware.measure import peak_memory_mb
    from archsearch.hardware.protocol import interleaved_latencies, reference_network, runner
    from archsearch.space.nb201 import NB201Space

    torch.set_num_threads(1)
    space = NB201Space()
    shape = (3, 32, 32)
    done = read_partial(args.partial)
    args.partial.parent.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(0).permutation(SPACE_SIZE)
    todo = [int(i) for i in order if space.to_string(space.from_index(int(i))) not in done]
    if args.reverse:
        todo.reverse()
    if args.limit is not None:
        todo = todo[: args.limit]
    print(f"{len(done)} measured, {len(todo)} to measure now", flush=True)
    reference = reference_network(space, shape, 10)
    anchors = {rt: runner(reference, shape, rt) for rt in ("torch", "onnx")}
    started = time.perf_counter()
    with open(args.partial, "a", newline="") as f:
        if f.tell() == 0:
            f.write(",".join(PARTIAL) + "\n")
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            models = []
            for index in chunk:
                torch.manual_seed(index)
                models.append(space.build(space.from_index(index), shape, 10))
            timed = {}
            for rt in ("torch", "onnx"):
                runs = [runner(m, shape, rt) for m in models]
                timed[rt] = interleaved_latencies(runs, anchors[rt])
            lines = []
            for k, (index, model) in enumerate(zip(chunk, models, strict=True)):
                values = [*timed["torch"][0][k], *timed["onnx"][0][k]]
                values += [peak_memory_mb(model, shape), timed["torch"][1], timed["onnx"][1]]
                arch = space.to_string(space.from_index(index))
                lines.append(",".join([arch] + [f"{v:.6g}" for v in values]) + "\n")
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
            count = start + len(chunk)
            if count % 100 == 0 or count == len(todo):
                rate = (time.perf_counter() - started) / count
                print(f"{count}/{len(todo)}  {rate:.3f} s each", flush=True)
    rows = read_partial(args.partial)
    if len(rows) == SPACE_SIZE:
        write_table(space, rows, args.out)
        package(args.out, PACKAGED)
        print(f"wrote {args.out} ({SPACE_SIZE} rows) and {PACKAGED.relative_to(ROOT)}")
    else:
        print(f"{len(rows)}/{SPACE_SIZE} measured; run again to go on")


def write_table(space, rows: dict[str, list[str]], out: Path) -> None:
    """The table, by benchmark index: ratios times the reference's median over the build."""
    values = {a: [float(v) for v in row[1:]] for a, row in rows.items()}
    torch_ms = float(np.median([v[5] for v in values.values()]))
    onnx_ms = float(np.median([v[6] for v in values.values()]))
    ranked = sorted(values, key=lambda a: space.index(space.from_string(a)))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for arch in ranked:
            r = values[arch]
            scaled = [r[0] * torch_ms, r[1] * torch_ms, r[2] * onnx_ms, r[3] * onnx_ms, r[4]]
            writer.writerow([arch, *(f"{v:.6g}" for v in scaled)])


def package(table: Path, packaged: Path) -> None:
    """The table's bytes, gzipped reproducibly (no name or time in the header)."""
    import gzip

    with open(packaged, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as f:
        f.write(table.read_bytes())


if __name__ == "__main__":
    main()
