"""How well latency models predict measured latency: the per-operation lookup table and a
learned predictor, on NAS-Bench-201 and the mobile space, for PyTorch and ONNX Runtime.

For each space, ``--networks`` distinct seeded random architectures are built and measured
whole on this machine (batch 1, one thread), ten at a time in three interleaved rounds
against a fixed reference network of the space, which cancels the machine's drift
(:func:`archsearch.hardware.protocol.interleaved_latencies`); the lookup table's units are
timed against the same reference, so both are on one scale. The first ``--train`` of them
are the models' training data, the rest are held out and scored:

* ``lut``: the lookup table's sum over the network's units (ProxylessNAS/FBNet), measured
  unit by unit; no network measured whole is used.
* ``lut_calibrated``: the same sum through the least-squares line fitted on the training
  networks (measured = scale * sum + offset), which absorbs what no unit holds.
* ``predictor``: a Gaussian process on the space's one-hot encoding, fit on the
  training networks (:class:`archsearch.hardware.latency_model.LatencyPredictor`).

Scores: mean absolute percentage error and Kendall's tau against measurement.
``remeasured`` scores a second measurement of the same held-out networks (same protocol, a
few minutes later) against the first: the noise ceiling, what a perfect model would get
against measurements this noisy. The table is
built from the units of the measured networks only (the same entries the full table of
``archsearch latency-table`` would give them, without timing the units no network here
holds). With ``--nb201-table data/nb201_latency.csv`` NAS-Bench-201 is scored against every
row of the measured hardware table instead (the predictor trains on ``--train`` of them).

Measuring is sensitive to the machine's load: run it with nothing else on the machine.
``python benchmarks/latency_models.py --json benchmarks/results/latency_models.json``
prints ``{SPACE: {RUNTIME: {"lut": {...}, "lut_calibrated": {...}, "predictor": {...}}}}``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

#: the spaces scored, with their networks' input shape and classes
SPACES = {
    "nb201": ({"name": "nb201"}, (3, 32, 32), 10),
    "mobilenet": ({"name": "mobilenet"}, (1, 28, 28), 10),
}
FIGURE = {"torch": "latency_ms", "onnx": "onnx_latency_ms"}
RESULT = Path(__file__).resolve().parent / "results" / "latency_models.json"
CHUNK = 10


def measured_networks(space, shape, classes, count, seed, runtimes, reference):
    """``count`` seeded random networks measured whole, in chunks of :data:`CHUNK`, each
    chunk in interleaved rounds against ``reference``; latencies are ratios to it times its
    median over every chunk (one scale for the whole run)."""
    import torch

    from archsearch.hardware.protocol import interleaved_latencies, runner

    archs = space.distinct_samples(np.random.default_rng(seed), count)
    ratios = {r: [] for r in runtimes}
    reference_ms = {r: [] for r in runtimes}
    for start in range(0, count, CHUNK):
        torch.manual_seed(0)
        models = [space.build(a, shape, classes) for a in archs[start : start + CHUNK]]
        for runtime in runtimes:
            runs = [runner(m, shape, runtime) for m in models]
            measured, ms = interleaved_latencies(runs, runner(reference, shape, runtime))
            ratios[runtime] += [ratio for ratio, _ in measured]
            reference_ms[runtime].append(ms)
    scale = {r: float(np.median(reference_ms[r])) for r in runtimes}
    return archs, {r: np.asarray(ratios[r]) * scale[r] for r in runtimes}, scale


def table_rows(space, path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    archs = [space.from_string(row["arch"]) for row in rows]
    return archs, {r: np.asarray([float(row[FIGURE[r]]) for row in rows]) for r in FIGURE}


def table_rankings(space, archs, measured) -> None:
    """How the whole table ranks networks: each runtime's latency against FLOPs (Spearman)
    and the two runtimes against each other (Kendall), over every row."""
    from scipy.stats import kendalltau, spearmanr

    from archsearch.tables.nb201 import nb201_costs

    flops = nb201_costs("cifar10")["flops"][[space.index(a) for a in archs]]
    for runtime, values in measured.items():
        print(f"nb201 table: {runtime} latency vs FLOPs Spearman {spearmanr(values, flops)[0]:.3f}")
    if len(measured) == 2:
        tau = kendalltau(*measured.values())[0]
        print(f"nb201 table: torch vs onnx latency Kendall tau {tau:.3f} ({len(archs)} networks)")


def score_space(name, args, runtimes):
    import torch

    from archsearch.build import build_space
    from archsearch.hardware.latency_model import LatencyPredictor, latency_errors
    from archsearch.hardware.lut import distinct_units, measure_table
    from archsearch.hardware.protocol import reference_network

    config, shape, classes = SPACES[name]
    space = build_space(config)
    started = time.perf_counter()
    reference = reference_network(space, shape, classes)
    scale = {r: None for r in runtimes}
    if name == "nb201" and args.nb201_table:
        archs, measured = table_rows(space, args.nb201_table)
        order = np.random.default_rng(args.seed).permutation(len(archs))
        archs = [archs[i] for i in order]
        measured = {r: measured[r][order] for r in runtimes}
    else:
        archs, measured, scale = measured_networks(
            space, shape, classes, args.networks, args.seed, runtimes, reference
        )
    train, test = slice(0, args.train), slice(args.train, None)
    if name == "nb201" and args.nb201_table:
        table_rankings(space, archs, measured)
    again = {}
    if not (name == "nb201" and args.nb201_table):  # the noise ceiling: measure them again
        _, again, _ = measured_networks(
            space, shape, classes, args.networks, args.seed, runtimes, reference
        )
    units = [space.latency_units(a, shape, classes) for a in archs]
    scores = {}
    for runtime in runtimes:
        torch.manual_seed(0)
        table = measure_table(
            distinct_units(u for us in units for u in us),
            runtime,
            reference=reference,
            reference_input=shape,
            reference_ms=scale[runtime],
        )
        raw = np.asarray([table.raw_sum(us) for us in units])
        slope, offset = np.polyfit(raw[train], measured[runtime][train], 1)
        predictor = LatencyPredictor(space, seed=args.seed).fit(
            archs[train], measured[runtime][train]
        )
        y = measured[runtime][test]
        scores[runtime] = {
            "lut": latency_errors(raw[test], y),
            "lut_calibrated": latency_errors(slope * raw[test] + offset, y),
            "predictor": latency_errors(predictor.predict(archs[test]), y),
            "remeasured": latency_errors(again[runtime][test], y) if again else None,
            "lut_units": len(table.entries),
            "calibration": {"scale": float(slope), "offset_ms": float(offset)},
            "measured_ms": {"median": float(np.median(y)), "min": float(y.min()),
                            "max": float(y.max())},
        }  # fmt: skip
        for model in ("lut", "lut_calibrated", "predictor", "remeasured"):
            s = scores[runtime][model]
            if s is None:
                continue
            print(
                f"{name:10s} {runtime:6s} {model:15s} MAPE {s['mape_percent']:6.2f}%  "
                f"tau {s['kendall']:.3f}  ({s['networks']} held-out networks)",
                flush=True,
            )
    print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default="nb201,mobilenet")
    parser.add_argument("--runtimes", default="torch,onnx")
    parser.add_argument("--networks", type=int, default=300, help="measured per space")
    parser.add_argument("--train", type=int, default=200, help="of them, training data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nb201-table", dest="nb201_table", help="score NB201 on this table")
    parser.add_argument("--json", nargs="?", const=str(RESULT), default=None)
    args = parser.parse_args()
    runtimes = args.runtimes.split(",")
    import torch

    torch.set_num_threads(1)
    with harness.json_mode(args):
        meta = harness.header(args, settings=f"{args.networks} networks, {args.train} train")
        results = {name: score_space(name, args, runtimes) for name in args.spaces.split(",")}
    del meta  # printed above; the JSON holds the scores alone, as documented
    harness.write_json(args.json, results)


if __name__ == "__main__":
    main()
