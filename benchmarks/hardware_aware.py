"""Latency-aware one-shot search against random networks: does a latency target give
networks of that latency, and are they as accurate as random networks of the same cost?

On Fashion-MNIST (``--train-size`` images, 28x28x1) and the mobilenet space at one width:

1. a per-unit latency table of every unit the space's networks hold
   (:func:`archsearch.hardware.lut.measure_table`, eager PyTorch, one thread, batch 1), or
   ``--latency-table`` to reuse one;
2. for each method (``--methods``) and each of ``--targets`` (ms), a one-shot search
   (:mod:`archsearch.oneshot.latency_aware`) to that target, and its argmax network;
3. each derived network and ``--random`` uniformly sampled ones retrained from scratch
   with one recipe (the ``train`` evaluator; ``--epochs``), then measured whole with
   :func:`archsearch.hardware.protocol.measure_network` (the protocol of every study).

``--json PATH`` writes ``{"runs": [{"method", "device", "target_ms", "table_ms",
"measured_ms", "test_acc", "arch"}], "random": [{"measured_ms", "table_ms", "test_acc",
"arch"}]}``. The baseline is random networks of the same space trained with the same
recipe: a search that is worth its cost puts its networks at the target and above the
random networks' accuracy at that latency.

Timing: the table and the networks are measured on whatever core the script runs on, with
the training on the same core; pin it (``taskset -c N``) and keep the machine otherwise
idle, or the latencies mean little. A tiny check of the plumbing (numbers meaningless)::

    taskset -c 0 python benchmarks/hardware_aware.py --train-size 256 --search-epochs 1 \\
        --epochs 0.1 --random 1 --targets 1.0 --methods proxylessnas --max-run-time 0.05
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


def build_table(space, args):
    from archsearch.hardware.lut import LatencyTable, measure_table

    if args.latency_table:
        return LatencyTable.load(args.latency_table), args.latency_table
    units = space.all_latency_units(SHAPE, CLASSES)
    started = time.perf_counter()
    table = measure_table(units, "torch", max_run_time=args.max_run_time)
    print(f"latency table: {len(table.entries)} units in {time.perf_counter() - started:.1f}s")
    path = Path(tempfile.mkdtemp()) / "mobilenet_lut.csv"
    table.save(path)
    return table, str(path)


def retrain_and_measure(arch, space, recipe, args):
    from archsearch.hardware.protocol import measure_network
    from archsearch.oneshot.pipeline import retrain

    result, _ = retrain(arch, space, recipe, seed=args.seed)
    measured = measure_network(
        result.model.cpu().eval(), SHAPE, ["latency_ms"], max_run_time=args.max_run_time
    )["latency_ms"]
    return measured, result.get("test_accuracy")


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
    parser.add_argument("--max-run-time", dest="max_run_time", type=float, default=1.0)
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
        table, table_path = build_table(space, args)
        data = load_search_data(
            "fashion-mnist", valid_size=args.valid_size, train_size=args.train_size,
            seed=args.seed,
        )  # fmt: skip
        runs = []
        for method_name in args.methods.split(","):
            for target in targets:
                torch.manual_seed(args.seed)
                net = build_supernet("mobilenet", SHAPE, CLASSES, widths=[args.width])
                method = ONESHOT.get(method_name)(
                    epochs=args.search_epochs, device="cpu", arch_lr=args.arch_lr,
                    latency_table=table_path, latency_target_ms=target, seed=args.seed,
                )  # fmt: skip
                found = method.search(net, data)
                table_ms = table.predict(space.latency_units(found.arch, SHAPE, CLASSES))
                measured, test_acc = retrain_and_measure(found.arch, space, recipe, args)
                row = {
                    "method": method_name, "device": "cpu", "target_ms": target,
                    "table_ms": table_ms, "measured_ms": measured, "test_acc": test_acc,
                    "arch": found.arch_string, "search_seconds": found.search_seconds,
                }  # fmt: skip
                print(row, flush=True)
                runs.append(row)
        random = []
        for arch in space.distinct_samples(np.random.default_rng(args.seed), args.random):
            measured, test_acc = retrain_and_measure(arch, space, recipe, args)
            table_ms = table.predict(space.latency_units(arch, SHAPE, CLASSES))
            row = {
                "measured_ms": measured, "table_ms": table_ms, "test_acc": test_acc,
                "arch": space.to_string(arch),
            }  # fmt: skip
            print(row, flush=True)
            random.append(row)
    harness.write_json(args.json, {"runs": runs, "random": random})


if __name__ == "__main__":
    main()
