"""Hardware-aware search against random networks: does a latency target on a device give
networks of that measured latency, and are they more accurate than random networks and the
FLOPs-constrained search at the same measured latency?

On Fashion-MNIST (``--train-size`` images, 28x28x1) and the mobilenet space at one width,
for each device of ``--devices`` (``cpu``: eager PyTorch; ``onnx``: ONNX Runtime's CPU
provider; one thread, batch 1):

1. a per-unit latency table of every unit the space's networks hold, calibrated on
   ``--calibrate`` random networks measured whole, all timed against one reference network
   (:func:`archsearch.hardware.lut.measure_calibrated_table`); one FLOPs table of the same
   units serves every device;
2. for each one-shot method of ``--methods`` and each of the device's ``--targets`` (ms), a
   search (:mod:`archsearch.oneshot.latency_aware`) to that target and its argmax network;
   the FLOPs-constrained search (``--flops-baseline`` with the FLOPs table and, as its
   budget, the FLOPs the calibration networks' least-squares line gives the latency target:
   what a user who trusts FLOPs would ask for); and, when ``ofa`` is among the methods, one
   Once-for-All supernet trained once (``--ofa-epochs``) and specialised for every device
   and target (:class:`~archsearch.oneshot.specialise.Specialiser`), without retraining it;
   with ``--ofa-measure K`` specialised again with the device in the loop (``ofa-measured``:
   the same front, each target's pick measured whole, K networks at a time);
3. every network found and ``--random`` uniformly sampled ones retrained from scratch with
   one recipe (``--epochs``), then all measured whole on every device, ten at a time in
   interleaved rounds against the reference (:func:`archsearch.hardware.protocol.
   measure_many`) beside the calibration networks, and put on the table's scale by the
   line from the calibration networks' ms now to their ms at the table
   (:meth:`~archsearch.hardware.lut.Calibration.measure`; ``"reference"`` in the JSON gives
   the line and the reference's ms then and now, ``measured_ms_by_reference`` the one-
   reference answer: ratio to the reference times its ms at the table).

``--json PATH`` writes ``{"runs": [{"method", "device", "target_ms", "table_ms",
"measured_ms", "test_acc", "arch"}], "random": [{"device", "measured_ms", "table_ms",
"test_acc", "arch"}], "summary": {METHOD: {DEVICE: {"runs", "within_10_percent",
"at_most_10_percent_over", "dominated_by_random", "dominated_by_flops",
"median_table_error"}}}}`` (``random`` is a
METHOD there with ``median_table_error`` alone). A network is *dominated* when another
one is at most as slow (measured, same device) and at least as accurate, better in one: a
search worth its cost puts its networks at the target and none of them dominated. The
table's error (median of |measured / table - 1|) on the random networks, which no search
chose, is the floor under the searched networks': a search lands no nearer its target, as
measured, than the table prices the networks it picks.

Timing: everything is measured on whatever core the script runs on, with the training on
the same core; pin it (``taskset -c N``) and keep the machine otherwise quiet, or the
latencies mean little. A tiny check of the plumbing (numbers meaningless)::

    taskset -c 0 python benchmarks/hardware_aware.py --train-size 256 --valid-size 256 \\
        --search-epochs 1 --epochs 0.1 --random 1 --targets cpu=1.0 --targets onnx=0.4 \\
        --calibrate 3 --ofa-epochs 1 --ofa-samples 8 --generations 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

RESULT = Path(__file__).resolve().parent / "results" / "hardware_aware.json"
SHAPE, CLASSES = (1, 28, 28), 10
RUNTIME = {"cpu": "torch", "onnx": "onnx"}
DEFAULT_TARGETS = {"cpu": [1.5, 2.5, 3.5], "onnx": [0.35, 0.45, 0.6]}


def parse_targets(items: list[str], devices: list[str]) -> dict[str, list[float]]:
    """``DEVICE=T,T,...`` per device (a bare list is the first device's); defaults else."""
    targets = {d: DEFAULT_TARGETS[d] for d in devices}
    for item in items:
        device, _, values = item.rpartition("=")
        targets[device or devices[0]] = [float(t) for t in values.split(",")]
    unknown = set(targets) - set(devices)
    if unknown:
        raise SystemExit(f"--targets for devices not in --devices: {sorted(unknown)}")
    return targets


def build_tables(space, devices, args):
    """Per device: the calibrated latency table saved, the least-squares line from the
    calibration networks' measured latency to their FLOPs (the FLOPs baseline's budget) and
    the :class:`~archsearch.hardware.lut.Calibration` (what later measurements are put on
    the table's scale by); and the FLOPs table, saved."""
    import tempfile
    import time

    from archsearch.hardware.cost import count_flops
    from archsearch.hardware.lut import LatencyTable, measure_calibrated_table

    folder = Path(tempfile.mkdtemp())
    flops_table = LatencyTable(
        "torch",
        {
            unit.key: count_flops(unit.build(), unit.input_shape) / 1e6
            for unit in space.all_latency_units(SHAPE, CLASSES)
        },
    )
    flops_table.save(folder / "flops.csv")
    tables = {}
    for device in devices:
        started = time.perf_counter()
        table, calibration = measure_calibrated_table(
            space, SHAPE, CLASSES, RUNTIME[device], args.calibrate, seed=args.seed + 1
        )
        path = folder / f"latency_{device}.csv"
        table.save(path)
        archs = calibration.archs
        flops = [flops_table.raw_sum(space.latency_units(a, SHAPE, CLASSES)) for a in archs]
        line = np.polyfit(calibration.measured_ms, flops, 1)
        tables[device] = (table, str(path), line, calibration)
        print(
            f"{device} table: {len(table.entries)} units, calibrated on {len(archs)} networks "
            f"(scale {table.scale:.3f}, offset {table.offset_ms:.3f} ms) in "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return tables, flops_table, str(folder / "flops.csv")


def retrain(arch, space, recipe, args):
    """The network of ``arch`` trained from scratch with the recipe, and its test accuracy."""
    from archsearch.oneshot.pipeline import retrain as train_one

    result, _ = train_one(arch, space, recipe, seed=args.seed)
    return result.model.cpu().eval(), result.get("test_accuracy")


def one_shot_searches(space, data, tables, flops_table, flops_path, targets, args):
    """Rows (without measurements) and architectures of every latency-aware and
    FLOPs-constrained one-shot search, per device and target."""
    import torch

    from archsearch.oneshot import ONESHOT, build_supernet

    searches = [(m, "latency") for m in args.methods.split(",") if m != "ofa"]
    if args.flops_baseline:
        searches.append((args.flops_baseline, "flops"))
    found_rows = []
    for device, (table, table_path, to_flops, _) in tables.items():
        for method_name, budget in searches:
            for target in targets[device]:
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
                row = {
                    "method": method_name if budget == "latency" else f"{method_name}-flops",
                    "device": device, "target_ms": target, "table_ms": table.predict(units),
                    "mflops": flops_table.raw_sum(units), "arch": found.arch_string,
                    "search_seconds": round(found.search_seconds, 1),
                }  # fmt: skip
                if budget == "flops":
                    row["target_mflops"] = flops_target
                print(row, flush=True)
                found_rows.append((row, found.arch))
    return found_rows


def ofa_searches(space, data, tables, flops_table, targets, args):
    """One OFA supernet trained once, specialised per device and target: rows and picks
    (a target below every network priced gives a row with no architecture). With
    ``--ofa-measure K``, specialised a second time with the device in the loop (method
    ``ofa-measured``): the same search and front, the pick measured, K at a time."""
    import torch

    from archsearch.oneshot import ONESHOT, Specialiser, build_supernet

    torch.manual_seed(args.seed)
    net = build_supernet("mobilenet", SHAPE, CLASSES, widths=[args.width])
    found = ONESHOT.get("ofa")(epochs=args.ofa_epochs, device="cpu", seed=args.seed).search(
        net, data
    )
    specialiser = Specialiser(
        found.supernet, data, samples=args.ofa_samples, eval_size=args.valid_size, seed=args.seed
    ).fit()
    assert specialiser.fit_report is not None
    print(f"ofa: trained in {found.search_seconds:.0f} s; {specialiser.fit_report.summary()}")

    def measure_on(calibration):
        def measure(archs):
            torch.manual_seed(0)
            return calibration.measure([space.build(a, SHAPE, CLASSES) for a in archs])[0]

        return measure

    tables_by_device = {device: table for device, (table, *_) in tables.items()}
    variants = {"ofa": None}
    if args.ofa_measure:
        variants["ofa-measured"] = {d: measure_on(c) for d, (*_, c) in tables.items()}
    found_rows = []
    for method, measure in variants.items():
        results = specialiser.specialise(
            tables_by_device,
            [t for ts in targets.values() for t in ts],
            population=args.population,
            generations=args.generations,
            measure=measure,
            shortlist=args.ofa_measure or 10,
        )
        for device, result in results.items():
            for target in targets[device]:
                pick = result.targets[float(target)]
                row = {
                    "method": method, "device": device, "target_ms": target,
                    "table_ms": None if pick is None else pick.latency_ms,
                    "predicted_accuracy": None if pick is None else pick.predicted_accuracy,
                    "arch": None if pick is None else pick.arch_string,
                    "specialise_seconds": round(result.seconds, 2),
                    "specialise_measured": result.measured,
                }  # fmt: skip
                if pick is not None:
                    units = space.latency_units(pick.arch, SHAPE, CLASSES)
                    row["mflops"] = flops_table.raw_sum(units)
                    if pick.measured_ms is not None:
                        row["specialise_measured_ms"] = pick.measured_ms
                print(row, flush=True)
                found_rows.append((row, None if pick is None else pick.arch))
    return found_rows


def dominated(row, others) -> bool:
    """Whether some other network is at most as slow and at least as accurate, better in one
    (measured latency on the row's device)."""
    point = (row["measured_ms"], row["test_acc"])
    return any(
        o["measured_ms"] <= point[0] and o["test_acc"] >= point[1]
        and (o["measured_ms"], o["test_acc"]) != point
        for o in others
    )  # fmt: skip


def summarise(runs, random) -> dict:
    """Per method and device: targets met within 10% (measured; and met in OFA's sense, at
    most 10% over: a specialised pick is the best network under the target, which may be
    well under it when nothing slower is predicted more accurate) and networks dominated by a
    random network or by the FLOPs-constrained search's; and for every method, random
    networks included, the median of |measured / table - 1|, the table's own error on those
    networks: a miss the random networks' error matches is the table's, not the search's."""
    summary: dict = {}
    errors: dict = {}
    for row in [*runs, *({**r, "method": "random"} for r in random)]:
        if row.get("measured_ms") is not None and row.get("table_ms"):
            error = abs(row["measured_ms"] / row["table_ms"] - 1)
            errors.setdefault((row["method"], row["device"]), []).append(error)
    for row in runs:
        if row.get("measured_ms") is None:
            continue
        device = row["device"]
        rivals = [r for r in random if r["device"] == device]
        flops = [
            r for r in runs
            if r["device"] == device and r["method"].endswith("-flops") and r.get("measured_ms")
        ]  # fmt: skip
        cell = summary.setdefault(row["method"], {}).setdefault(
            device, {"runs": 0, "within_10_percent": 0, "at_most_10_percent_over": 0,
                     "dominated_by_random": 0, "dominated_by_flops": 0}
        )  # fmt: skip
        cell["runs"] += 1
        cell["within_10_percent"] += abs(row["measured_ms"] / row["target_ms"] - 1) <= 0.1
        cell["at_most_10_percent_over"] += row["measured_ms"] <= 1.1 * row["target_ms"]
        cell["dominated_by_random"] += dominated(row, rivals)
        if not row["method"].endswith("-flops"):
            cell["dominated_by_flops"] += dominated(row, flops)
    for (method, device), values in errors.items():
        cell = summary.setdefault(method, {}).setdefault(device, {"runs": len(values)})
        cell["median_table_error"] = round(float(np.median(values)), 4)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="cpu,onnx", help="cpu (eager PyTorch), onnx")
    parser.add_argument("--methods", default="proxylessnas,fbnet,ofa")
    parser.add_argument("--targets", action="append", default=[], metavar="DEVICE=MS,MS",
                        help=f"latency targets per device (default {DEFAULT_TARGETS})")  # fmt: skip
    parser.add_argument("--train-size", dest="train_size", type=int, default=4000)
    parser.add_argument("--valid-size", dest="valid_size", type=int, default=1000)
    parser.add_argument("--search-epochs", dest="search_epochs", type=int, default=4)
    parser.add_argument("--arch-lr", dest="arch_lr", type=float, default=0.05)
    parser.add_argument("--epochs", type=float, default=2, help="retraining epochs")
    parser.add_argument("--random", type=int, default=8, help="random networks retrained")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument(
        "--calibrate", type=int, default=20, help="networks measured whole to calibrate on"
    )
    parser.add_argument(
        "--flops-baseline", dest="flops_baseline", default="proxylessnas",
        help="method run with a FLOPs table instead (the FLOPs-constrained search); '' for none",
    )  # fmt: skip
    parser.add_argument("--ofa-epochs", dest="ofa_epochs", type=int, default=8)
    parser.add_argument("--ofa-samples", dest="ofa_samples", type=int, default=150)
    parser.add_argument(
        "--ofa-measure", dest="ofa_measure", type=int, default=0, metavar="K",
        help="also specialise OFA with the device in the loop, measuring K networks at a time",
    )  # fmt: skip
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--population", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", nargs="?", const=str(RESULT), default=None)
    args = parser.parse_args()
    devices = args.devices.split(",")
    unknown = [d for d in devices if d not in RUNTIME]
    if unknown:
        raise SystemExit(f"unknown devices {unknown}; known: {list(RUNTIME)}")
    targets = parse_targets(args.targets, devices)
    import torch

    from archsearch.build import build_space
    from archsearch.oneshot import load_search_data

    torch.set_num_threads(1)
    recipe = {
        "dataset": "fashion-mnist", "epochs": args.epochs, "train_size": args.train_size,
        "valid_size": args.valid_size, "device": "cpu",
    }  # fmt: skip
    with harness.json_mode(args):
        harness.header(
            args,
            settings=f"targets {targets} ms, {args.search_epochs} search epochs, ofa "
            f"{args.ofa_epochs} epochs, retrain {args.epochs} epochs on {args.train_size} "
            f"images, {args.random} random networks",
        )
        space = build_space({"name": "mobilenet", "widths": [args.width]})
        tables, flops_table, flops_path = build_tables(space, devices, args)
        data = load_search_data(
            "fashion-mnist", valid_size=args.valid_size, train_size=args.train_size,
            seed=args.seed,
        )  # fmt: skip
        found = one_shot_searches(space, data, tables, flops_table, flops_path, targets, args)
        if "ofa" in args.methods.split(","):
            found += ofa_searches(space, data, tables, flops_table, targets, args)
        runs, models, trained = [], [], {}
        for row, arch in found:
            runs.append(row)
            if arch is None:
                row.update(test_acc=None, measured_ms=None)
                continue
            if arch not in trained:  # the same network found twice is trained once
                trained[arch] = retrain(arch, space, recipe, args)
                models.append((arch, trained[arch][0]))
            row["test_acc"] = trained[arch][1]
        random = []
        for arch in space.distinct_samples(np.random.default_rng(args.seed), args.random):
            if arch not in trained:
                trained[arch] = retrain(arch, space, recipe, args)
                models.append((arch, trained[arch][0]))
            for device in devices:
                units = space.latency_units(arch, SHAPE, CLASSES)
                random.append({
                    "device": device, "table_ms": tables[device][0].predict(units),
                    "mflops": flops_table.raw_sum(units), "test_acc": trained[arch][1],
                    "arch": space.to_string(arch), "_arch": arch,
                })  # fmt: skip
        drift = {}
        for device in devices:
            # on the table's scale, through the calibration networks measured again beside
            # them (the machine's speed may have moved, and not uniformly, in the hour since)
            calibration = tables[device][3]
            measured, how = calibration.measure([m for _, m in models])
            by_reference = how.pop("by_reference")
            drift[device] = how
            print(
                f"{device}: reference {how['reference_ms_at_table']:.3f} ms at the table, "
                f"{how['reference_ms_now']:.3f} ms now; calibration networks then = "
                f"{how['slope']:.3f} x now + {how['intercept_ms']:.3f} ms"
            )
            by_arch = {
                arch: pair for (arch, _), *pair in zip(models, measured, by_reference, strict=True)
            }
            for row, arch in [*found, *((r, r["_arch"]) for r in random)]:
                if row["device"] == device and arch is not None:
                    row["measured_ms"], row["measured_ms_by_reference"] = by_arch[arch]
        for row in random:
            row.pop("_arch")
        for row in runs:
            if row["measured_ms"] is None:
                print(f"{row['method']:18s} {row['device']:4s} target {row['target_ms']:.2f} ms"
                      "  unmet: below every network priced")  # fmt: skip
                continue
            off = row["measured_ms"] / row["target_ms"] - 1
            print(
                f"{row['method']:18s} {row['device']:4s} target {row['target_ms']:.2f} ms  "
                f"measured {row['measured_ms']:.2f} ms ({off:+.1%})  test {row['test_acc']:.2f}%"
            )
        for row in random:
            print(
                f"{'random':18s} {row['device']:4s} measured {row['measured_ms']:.2f} ms  "
                f"test {row['test_acc']:.2f}%"
            )
        summary = summarise(runs, random)
        for method, cells in summary.items():
            for device, cell in cells.items():
                print(f"{method:18s} {device:4s} {cell}")
    harness.write_json(
        args.json, {"runs": runs, "random": random, "summary": summary, "reference": drift}
    )


if __name__ == "__main__":
    main()
