"""``specialise``: Once-for-All specialisation of a trained supernet for devices and latency
targets, without retraining (:mod:`archsearch.oneshot.specialise`)::

    archsearch oneshot --method ofa --space mobilenet --out runs/ofa ...
    archsearch specialise runs/ofa --latency-table cpu=lut_torch.csv \\
        --latency-table onnx=lut_onnx.csv --target 1.0 --target 2.0 --json

``DIR`` is a one-shot study directory (its ``supernet.pt``, with the data recipe it was
trained on); every input is checked before any scoring, and a user error is one line and
exit status 2. ``--out FILE`` also writes the JSON result there. ``--measure DEVICE`` puts
that device in the loop: the machine running the command *is* the device, and each target's
pick is the best predicted network of the front *measured* whole under the target (in the
table's runtime, threads and batch size), not only priced under it by the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch.checks import check_output_file
from archsearch.cli.types import seed
from archsearch.errors import ArchsearchError

if TYPE_CHECKING:
    from archsearch.hardware.lut import LatencyTable
    from archsearch.oneshot.specialise import Measure, Specialiser


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "specialise",
        help="specialise a trained ofa supernet for latency tables and targets (no retraining)",
        description="Score sub-networks with inherited weights, fit an accuracy predictor and "
        "search, per device, the Pareto front and the best network under each target.",
    )
    p.add_argument("directory", help="one-shot study directory of an ofa run (its supernet.pt)")
    p.add_argument(
        "--latency-table", dest="tables", action="append", default=[], metavar="DEVICE=PATH",
        required=True, help="a device's latency table (archsearch latency-table); repeatable",
    )  # fmt: skip
    p.add_argument(
        "--target", dest="targets", action="append", type=float, default=[], required=True,
        metavar="MS", help="latency target in ms; repeatable",
    )  # fmt: skip
    p.add_argument(
        "--measure", action="append", default=[], metavar="DEVICE",
        help="measure this device's candidates here and pick by measured latency; repeatable",
    )  # fmt: skip
    p.add_argument("--samples", type=int, default=300, help="sub-networks scored")
    p.add_argument("--predictor", default="gp", help="registered accuracy predictor")
    p.add_argument("--eval-size", dest="eval_size", type=int, default=500)
    p.add_argument("--calibration-batches", dest="calibration_batches", type=int, default=4)
    p.add_argument("--population", type=int, default=32)
    p.add_argument("--generations", type=int, default=30)
    p.add_argument("--device", default="auto", help="where sub-networks are scored")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--out", help="also write the JSON result to this file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def parse_tables(specs: list[str]) -> dict[str, Any]:
    """``DEVICE=PATH`` pairs as loaded tables, by device."""
    from archsearch.hardware.lut import LatencyTable

    tables: dict[str, Any] = {}
    for spec in specs:
        device, sep, path = spec.partition("=")
        if not sep or not device or not path:
            raise ArchsearchError(f"--latency-table takes DEVICE=PATH, got {spec!r}")
        if device in tables:
            raise ArchsearchError(f"--latency-table names device {device!r} twice")
        tables[device] = LatencyTable.load(path)
    return tables


def run(args: argparse.Namespace) -> int:
    from archsearch.oneshot.run import CHECKPOINT

    directory = Path(args.directory)
    checkpoint = directory / CHECKPOINT
    if not checkpoint.is_file():
        raise ArchsearchError(
            f"{directory} holds no trained supernet ({CHECKPOINT}); train one with "
            "'archsearch oneshot --method ofa --space mobilenet --out DIR'"
        )
    bad = [t for t in args.targets if not t > 0]
    if bad:
        raise ArchsearchError(f"--target must be a positive number of ms, got {bad[0]}")
    for name in ("samples", "eval_size", "calibration_batches", "population", "generations"):
        if getattr(args, name) <= 0:
            raise ArchsearchError(
                f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}"
            )
    if args.out is not None:
        check_output_file(args.out, "--out")
    tables = parse_tables(args.tables)
    unknown = [d for d in args.measure if d not in tables]
    if unknown:
        raise ArchsearchError(f"--measure {unknown[0]}: no --latency-table for that device")

    import archsearch.components  # noqa: F401  (registries)
    from archsearch.oneshot import Runtime, load_supernet
    from archsearch.oneshot.data import load_search_data
    from archsearch.oneshot.specialise import Specialiser

    supernet, recipe = load_supernet(checkpoint)
    specialiser = Specialiser(
        supernet,
        load_search_data(**{**recipe, **({"data_dir": args.data_dir} if args.data_dir else {})}),
        samples=args.samples,
        predictor=args.predictor,
        eval_size=args.eval_size,
        calibration_batches=args.calibration_batches,
        seed=args.seed,
        runtime=Runtime.resolve(args.device),
    )
    for device, table in tables.items():  # before any scoring
        specialiser.check_table(table, device)
    specialiser.fit()
    results = specialiser.specialise(
        tables, args.targets, population=args.population, generations=args.generations,
        measure={d: measure_here(specialiser, tables[d]) for d in args.measure},
    )  # fmt: skip
    assert specialiser.fit_report is not None
    summary = {
        "study": str(directory),
        "predictor": specialiser.fit_report.summary(),
        "devices": {device: r.summary() for device, r in results.items()},
    }
    text = json.dumps(summary, indent=2, default=str)
    if args.out is not None:
        Path(args.out).write_text(text)
    if args.json:
        print(text)
        return 0
    report = specialiser.fit_report
    print(
        f"predictor {report.predictor}: {report.scored} sub-networks scored in "
        f"{report.scoring_seconds:.1f} s, held-out Kendall tau {report.holdout_kendall_tau}"
    )
    for device, result in results.items():
        print(f"{device} ({result.runtime}): front of {len(result.front)}, "
              f"{result.evaluations} priced in {result.seconds:.2f} s")  # fmt: skip
        for target, c in result.targets.items():
            measured = (
                "" if c is None or c.measured_ms is None else f", measured {c.measured_ms:.4g}"
            )
            found = (
                f"{c.arch_string} ({c.latency_ms:.4g} ms{measured}, predicted "
                f"{c.predicted_accuracy:.2f}%)"
                if c
                else "nothing priced meets it"
            )
            print(f"  target {target:g} ms: {found}")
    return 0


def measure_here(specialiser: Specialiser, table: LatencyTable) -> Measure:
    """The device in the loop: the specialiser's architectures measured whole on this
    machine in the table's runtime, threads and batch size."""
    from archsearch.hardware.protocol import architecture_measure

    net = specialiser.supernet
    return architecture_measure(
        specialiser.space, net.input_shape, net.num_classes, table.runtime,
        threads=table.threads, batch_size=table.batch_size,
    )  # fmt: skip
