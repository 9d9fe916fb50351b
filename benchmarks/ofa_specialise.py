"""Once-for-All at CPU scale: train one supernet by progressive shrinking on Fashion-MNIST,
then specialise it for several latency targets on several devices, without retraining.

1. ``ofa`` (:mod:`archsearch.oneshot.ofa`) trains the mobilenet supernet at one width
   (``--epochs``, ``--train-size`` images, 28x28x1; ``--space-opt`` shrinks it);
2. :class:`~archsearch.oneshot.specialise.Specialiser` scores ``--samples`` sub-networks
   with inherited weights (BN recalibrated), fits the ``--predictor`` on them and, per
   device of ``--latency-table DEVICE=PATH`` (repeatable; tables written by ``archsearch
   latency-table`` for this space, width and input), searches the Pareto front and picks
   the best predicted network under each of ``--targets``.

Prints one JSON line per (device, target): ``{"method": "ofa", "device", "target_ms",
"table_ms", "arch", "predicted_accuracy"}`` (``arch`` null when nothing meets the target),
then one line with the predictor's held-out Kendall tau and the timings. Without a table,
one eager-PyTorch table is measured here first (device ``cpu``). Retraining and measuring
the picks whole is ``benchmarks/hardware_aware.py``'s protocol; this script only shows that
one training serves every (device, target). A tiny check of the plumbing (numbers
meaningless)::

    taskset -c 0 python benchmarks/ofa_specialise.py --train-size 256 --valid-size 256 \\
        --epochs 1 --samples 16 --generations 2 --max-run-time 0.01 \\
        --space-opt 'stages=[[16,2],[24,2]]' --space-opt max_depth=2 --space-opt head_channels=64
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

SHAPE, CLASSES = (1, 28, 28), 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-table", dest="tables", action="append", default=[],
                        metavar="DEVICE=PATH")  # fmt: skip
    parser.add_argument("--targets", default="1.0,1.5,2.0", help="latency targets, ms")
    parser.add_argument("--train-size", dest="train_size", type=int, default=5000)
    parser.add_argument("--valid-size", dest="valid_size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=12, help="progressive shrinking epochs")
    parser.add_argument("--samples", type=int, default=300, help="sub-networks scored")
    parser.add_argument("--eval-size", dest="eval_size", type=int, default=1000)
    parser.add_argument("--predictor", default="gp")
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--population", type=int, default=32)
    parser.add_argument("--no-distill", dest="distill", action="store_false")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--space-opt", dest="space_opts", action="append", default=[],
                        metavar="KEY=JSON")  # fmt: skip
    parser.add_argument("--max-run-time", dest="max_run_time", type=float, default=1.0,
                        help="per unit, when a table is measured here")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    from archsearch.cli.specialise_cmd import parse_tables
    from archsearch.hardware.lut import measure_table
    from archsearch.oneshot import ONESHOT, Specialiser, build_supernet, load_search_data

    torch.set_num_threads(1)
    targets = [float(t) for t in args.targets.split(",")]
    space_options = {"widths": [args.width]}
    for item in args.space_opts:
        key, _, value = item.partition("=")
        space_options[key] = json.loads(value)
    harness.header(
        args,
        settings=f"targets {targets} ms, {args.epochs} ofa epochs on {args.train_size} images, "
        f"{args.samples} sub-networks scored on {args.eval_size}, space {space_options}",
    )
    torch.manual_seed(args.seed)
    net = build_supernet("mobilenet", SHAPE, CLASSES, **space_options)
    tables = parse_tables(args.tables)
    if not tables:
        started = time.perf_counter()
        units = net.space.all_latency_units(SHAPE, CLASSES)
        table = measure_table(units, "torch", max_run_time=args.max_run_time)
        table.save(Path(tempfile.mkdtemp()) / "mobilenet_lut.csv")
        print(f"latency table: {len(table.entries)} units in {time.perf_counter() - started:.1f}s")
        tables = {"cpu": table}
    data = load_search_data(
        "fashion-mnist", valid_size=args.valid_size, train_size=args.train_size, seed=args.seed
    )
    method = ONESHOT.get("ofa")(epochs=args.epochs, device="cpu", seed=args.seed,
                                distill=args.distill)  # fmt: skip
    specialiser = Specialiser(net, data, samples=args.samples, predictor=args.predictor,
                              eval_size=args.eval_size, seed=args.seed)  # fmt: skip
    for device, table in tables.items():  # before training
        specialiser.check_table(table, device)
    found = method.search(net, data)
    specialiser.supernet = found.supernet
    specialiser.fit()
    started = time.perf_counter()
    results = specialiser.specialise(
        tables, targets, population=args.population, generations=args.generations
    )
    specialise_seconds = time.perf_counter() - started
    for device, result in results.items():
        for target, pick in result.targets.items():
            row = {
                "method": "ofa", "device": device, "target_ms": target,
                "table_ms": None if pick is None else round(pick.latency_ms, 5),
                "arch": None if pick is None else pick.arch_string,
                "predicted_accuracy": None if pick is None else round(pick.predicted_accuracy, 3),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
    assert specialiser.fit_report is not None
    print(json.dumps({
        "train_seconds": round(found.search_seconds, 2),
        "predictor": specialiser.fit_report.summary(),
        "specialise_seconds": round(specialise_seconds, 3),
        "last_epoch": {k: found.history[-1].get(k) for k in ("train_acc", "valid_acc")},
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
