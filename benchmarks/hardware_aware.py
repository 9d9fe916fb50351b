"""Latency-aware one-shot search against random networks: does a latency target give
networks of that latency, and are they as accurate as random networks of the same cost?

On Fashion-MNIST (``--train-size`` images, 28x28x1) and the mobilenet space at one width:

1. a per-unit latency table of every unit the space's networks hold
   (:func:`archsearch.hardware.lut.measure_table`, eager PyTorch, one thread, batch 1),
   timed against a reference network and calibrated on ``--calibrate`` random networks
   measured whole, or ``--latency-table`` to reuse one; and a FLOPs table of the same units;
2. for each method (``--methods``) and each of ``--targets`` (ms), a one-shot search
   (:mod:`archsearch.oneshot.latency_aware`) to that target, and its argmax network; and
   the FLOPs-constrained search: ``--flops-baseline`` with the FLOPs table and, as its
   budget, the FLOPs the calibration networks' least-squares line gives the latency target
   (what a user who trusts FLOPs would ask for);
3. each derived network and ``--random`` uniformly sampled ones retrained from scratch
   with one recipe (``--epochs``), then all measured whole together, ten at a time in
   interleaved rounds against the reference
   (:func:`archsearch.hardware.protocol.measure_many`).

``--json PATH`` writes ``{"runs": [{"method", "device", "target_ms", "table_ms",
"measured_ms", "test_acc", "arch"}], "random": [{"measured_ms", "table_ms", "test_acc",
"arch"}]}``. The baseline is random networks of the same space trained with the same
recipe: a search that is worth its cost puts its networks at the target and above the
random networks' accuracy at that latency.

Timing: the table and the networks are measured on whatever core the script runs on, with
the training on the same core; pin it (``taskset -c N``) and keep the machine otherwise
idle, or the latencies mean little. A tiny check of the plumbing (numbers meaningless)::

    taskset -c 0 python benchmarks/hardware_aware.py --train-size 256 --search-epochs 1 \\
        --epochs 0.1 --random 1 --targets 1.0 --methods proxylessnas --calibrate 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

RESULT = Path(__file__).resolve().parent / "results" / "hardware_aware.json"
SHAPE, CLASSES = (1, 28, 28), 10


def reference_network(space):
    """The network every latency here is measured against (one seeded sample)."""
    import torch

    (arch,) = space.distinct_samples(np.random.default_rng(10**6), 1)
    torch.manual_seed(0)
    return space.build(arch, SHAPE, CLASSES)


def build_tables(space, reference, args):
    """The calibrated latency table and the FLOPs table, saved; and the line from measured
    latency to FLOPs over the calibration networks (the FLOPs baseline's budget).

    Units are timed against ``reference`` and the table is calibrated on ``--calibrate``
    random networks measured whole the same way: the raw sum of units measured alone
    misses what happens between them (on this machine it under-predicts eager PyTorch by
    about 30%), and the target is a *measured* latency."""
    import torch

    from archsearch.hardware.cost import count_flops
    from archsearch.hardware.lut import LatencyTable, measure_table
    from archsearch.hardware.protocol import measure_many

    folder = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    archs = space.distinct_samples(np.random.default_rng(args.seed + 1), args.calibrate)
    torch.manual_seed(0)
    models = [space.build(a, SHAPE, CLASSES) for a in archs]
    measured, reference_ms = measure_many(models, SHAPE, reference)
    if args.latency_table:
        table = LatencyTable.load(args.latency_table)
    else:
        units = space.all_latency_units(SHAPE, CLASSES)
        table = measure_table(
            units, "torch", reference=reference, reference_input=SHAPE, reference_ms=reference_ms
        )
        raw = [table.raw_sum(space.latency_units(a, SHAPE, CLASSES)) for a in archs]
        table.scale, table.offset_ms = (float(v) for v in np.polyfit(raw, measured, 1))
    table.save(folder / "latency.csv")
    flops_entries = {}
    for unit in space.all_latency_units(SHAPE, CLASSES):
        flops_entries[unit.key] = count_flops(unit.build(), unit.input_shape) / 1e6
    flops_table = LatencyTable("torch", flops_entries)
    flops_table.save(folder / "flops.csv")
    flops = [flops_table.raw_sum(space.latency_units(a, SHAPE, CLASSES)) for a in archs]
    to_flops = np.polyfit(measured, flops, 1)
    print(
        f"tables: {len(table.entries)} units, calibrated on {len(archs)} networks "
        f"(scale {table.scale:.3f}, offset {table.offset_ms:.3f} ms) in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return table, str(folder / "latency.csv"), flops_table, str(folder / "flops.csv"), to_flops


def retrain(arch, space, recipe, args):
    """The network of ``arch`` trained from scratch with the recipe, and its test accuracy."""
    from archsearch.oneshot.pipeline import retrain as train_one

    result, _ = train_one(arch, space, recipe, seed=args.seed)
    return result.model.cpu().eval(), result.get("test_accuracy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="proxylessnas,fbnet")
    parser.add_argument("--targets", default="1.0,1.5,2.0", help="latency targets, ms")
    parser.add_argument("--train-size", dest="train_size", type=int, default=5000)
    parser.add_argument("--valid-size", dest="valid_size", type=int, default=2000)
    parser.add_argument("--search-epochs", dest="search_epochs", type=int, default=10)
    parser.add_argument("--arch-lr", dest="arch_lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=float, default=3, help="retraining epochs")
    parser.add_argument("--random", type=int, default=6, help="random networks retrained")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--latency-table", dest="latency_table", help="reuse this table")
    parser.add_argument(
        "--calibrate", type=int, default=20, help="networks measured whole to calibrate on"
    )
    parser.add_argument(
        "--flops-baseline", dest="flops_baseline", default="proxylessnas",
        help="method run with a FLOPs table instead (the FLOPs-constrained search); '' for none",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", nargs="?", const=str(RESULT), default=None)
    args = parser.parse_args()
    import torch

    from archsearch.build import build_space
    from archsearch.oneshot import ONESHOT, build_supernet, load_search_data

    torch.set_num_threads(1)
    targets = [float(t) for t in args.targets.split(",")]
    space_config = {"name": "mobilenet", "widths": [args.width]}
    recipe = {
        "dataset": "fashion-mnist", "epochs": args.epochs, "train_size": args.train_size,
        "valid_size": args.valid_size, "device": "cpu",
    }  # fmt: skip
    with harness.json_mode(args):
        harness.header(
            args,
            settings=f"targets {targets} ms, {args.search_epochs} search epochs, retrain "
            f"{args.epochs} epochs on {args.train_size} images, {args.random} random networks",
        )
        space = build_space(space_config)
        reference = reference_network(space)
        table, table_path, flops_table, flops_path, to_flops = build_tables(space, reference, args)
        data = load_search_data(
            "fashion-mnist", valid_size=args.valid_size, train_size=args.train_size,
            seed=args.seed,
        )  # fmt: skip
        runs, models = [], []
        searches = [(m, "latency") for m in args.methods.split(",")]
        if args.flops_baseline:
            searches.append((args.flops_baseline, "flops"))
        for method_name, budget in searches:
            for target in targets:
                torch.manual_seed(args.seed)
                net = build_supernet("mobilenet", SHAPE, CLASSES, widths=[args.width])
                flops_target = float(np.polyval(to_flops, target))
                method = ONESHOT.get(method_name)(
                    epochs=args.search_epochs, device="cpu", arch_lr=args.arch_lr,
                    latency_table=table_path if budget == "latency" else flops_path,
                    latency_target_ms=target if budget == "latency" else flops_target,
                    seed=args.seed,
                )  # fmt: skip
                found = method.search(net, data)
                units = space.latency_units(found.arch, SHAPE, CLASSES)
                model, test_acc = retrain(found.arch, space, recipe, args)
                models.append(model)
                row = {
                    "method": method_name if budget == "latency" else f"{method_name}-flops",
                    "device": "cpu", "target_ms": target, "table_ms": table.predict(units),
                    "mflops": flops_table.raw_sum(units), "test_acc": test_acc,
                    "arch": found.arch_string, "search_seconds": found.search_seconds,
                }  # fmt: skip
                if budget == "flops":
                    row["target_mflops"] = flops_target
                print(row, flush=True)
                runs.append(row)
        random = []
        for arch in space.distinct_samples(np.random.default_rng(args.seed), args.random):
            model, test_acc = retrain(arch, space, recipe, args)
            models.append(model)
            units = space.latency_units(arch, SHAPE, CLASSES)
            row = {
                "table_ms": table.predict(units), "mflops": flops_table.raw_sum(units),
                "test_acc": test_acc, "arch": space.to_string(arch),
            }  # fmt: skip
            print(row, flush=True)
            random.append(row)
        from archsearch.hardware.protocol import measure_many

        measured, _ = measure_many(models, SHAPE, reference)
        for row, ms in zip([*runs, *random], measured, strict=True):
            row["measured_ms"] = ms
        for row in runs:
            off = row["measured_ms"] / row["target_ms"] - 1
            print(
                f"{row['method']:18s} target {row['target_ms']:.2f} ms  measured "
                f"{row['measured_ms']:.2f} ms ({off:+.1%})  test {row['test_acc']:.2f}%"
            )
        for row in random:
            print(
                f"{'random':18s} measured {row['measured_ms']:.2f} ms  test {row['test_acc']:.2f}%"
            )
    harness.write_json(args.json, {"runs": runs, "random": random})


if __name__ == "__main__":
    main()
