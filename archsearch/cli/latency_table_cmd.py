"""``latency-table``: measure a space's per-operation latency lookup table on this machine.

Every distinct unit any network of the space holds (:mod:`archsearch.hardware.units`) is
measured once, in its context, and written as CSV (:class:`archsearch.hardware.lut.LatencyTable`);
``--calibrate N`` also measures N seeded random networks whole and stores the least-squares
line from the table's sum to their measurement, which absorbs what no unit holds (the
network's own call overhead, the cache left warm by the previous operator); networks and
units are then all timed in interleaved rounds against one reference network, so that the
machine's drift between them does not enter the line
(:func:`archsearch.hardware.lut.measure_calibrated_table`).
"""

from __future__ import annotations

import argparse
import sys

from archsearch.cli.types import positive_int
from archsearch.errors import ArchsearchError


def register(subparsers: argparse._SubParsersAction) -> None:
    table = subparsers.add_parser(
        "latency-table",
        help="measure a space's per-operation latency lookup table on this machine",
        description="Measure once every operation, in its context, that a space's networks "
        "hold; a network's latency is then predicted as the sum of its operations'.",
    )
    table.add_argument("--space", required=True, help="search space (nb201, mobilenet)")
    table.add_argument(
        "--space-opt", dest="space_opts", action="append", default=[], metavar="KEY=VALUE",
        help="space option (VALUE parsed as JSON when possible), repeatable",
    )  # fmt: skip
    table.add_argument("--out", required=True, help="CSV file to write")
    table.add_argument(
        "--runtime", choices=("torch", "onnx"), default="torch",
        help="eager PyTorch (latency_ms) or ONNX Runtime's CPU provider (onnx_latency_ms)",
    )  # fmt: skip
    table.add_argument(
        "--input-shape", dest="input_shape", default=None, metavar="C,H,W",
        help="network input (default: the space's own, else 3,32,32)",
    )  # fmt: skip
    table.add_argument("--classes", type=positive_int, default=10, help="classifier outputs")
    table.add_argument("--threads", type=positive_int, default=1, help="CPU threads (1)")
    table.add_argument("--batch-size", dest="batch_size", type=positive_int, default=1)
    table.add_argument(
        "--calibrate", type=int, default=0, metavar="N",
        help="also measure N random networks whole and fit the sum to them (default 0)",
    )  # fmt: skip
    table.add_argument("--seed", type=int, default=0, help="seeds the calibration networks")
    table.add_argument("--json", action="store_true", help="print a summary as JSON")
    table.set_defaults(handler=run_latency_table)


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ArchsearchError(f"--input-shape must be C,H,W with positive sizes, got {text!r}")
    return shape


def run_latency_table(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archsearch.cli.main import print_json
    from archsearch.cli.search_cmd import parse_options

    shape = _shape(args.input_shape)
    if args.calibrate < 0:
        raise ArchsearchError(f"--calibrate must be >= 0, got {args.calibrate}")
    out = Path(args.out)
    if out.is_dir() or not out.parent.is_dir():
        raise ArchsearchError(f"cannot write {out}: not a file in an existing directory")
    if args.runtime == "onnx":
        from archsearch.hardware.onnx import EXTRA_HINT, onnx_runtime_available

        if not onnx_runtime_available():
            raise ArchsearchError(EXTRA_HINT)

    from archsearch.build import build_space
    from archsearch.hardware.lut import (
        measure_calibrated_table,
        measure_table,
        require_latency_units,
    )

    space = build_space({"name": args.space, **parse_options(args.space_opts, "space")})
    if shape is None:
        shape = tuple(getattr(space, "input_shape", None) or (3, 32, 32))
    require_latency_units(space)

    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            print(f"archsearch: measured {done}/{total} units", file=sys.stderr)

    if args.calibrate:
        table, _ = measure_calibrated_table(
            space, shape, args.classes, args.runtime, args.calibrate,
            seed=args.seed, threads=args.threads, batch_size=args.batch_size, progress=progress,
        )  # fmt: skip
    else:
        units = space.all_latency_units(shape, args.classes)
        table = measure_table(
            units, args.runtime, threads=args.threads, batch_size=args.batch_size, progress=progress
        )
    try:
        table.save(out)
    except OSError as error:
        raise ArchsearchError(f"cannot write {out}: {error.strerror}") from None
    summary = {
        "out": str(out),
        "space": args.space,
        "runtime": args.runtime,
        "units": len(table.entries),
        "input_shape": list(shape),
        "calibration": {"scale": table.scale, "offset_ms": table.offset_ms},
    }
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {out}: {len(table.entries)} units measured ({args.runtime})")
    return 0
