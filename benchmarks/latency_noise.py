"""How noisy the hardware figures are: the same networks re-measured in separate processes.

A latency taken in one process can be off in ways its own inter-quartile range never shows
(where the allocator placed the tensors, what the other core was doing, the CPU's state), so
the protocol's noise is measured the way a user meets it: ``--processes`` fresh Python
processes each build and measure the same ``--networks`` seeded random architectures with
:func:`archsearch.hardware.protocol.measure_network` (batch 1, one thread). For each figure
it prints the coefficient of variation across processes (standard deviation over mean, per
network; median and 90th percentile over networks) and, for latencies, the median relative
inter-quartile range within one measurement. ``*_relative`` are the same latencies taken by
the table's protocol instead: ten networks at a time in interleaved rounds against a fixed
reference network, as ratios to it (:func:`archsearch.hardware.protocol.interleaved_latencies`).

``python benchmarks/latency_noise.py --space nb201 --json benchmarks/results/latency_noise.json``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

SPACES = {
    "nb201": ({"name": "nb201"}, (3, 32, 32)),
    "mobilenet": ({"name": "mobilenet"}, (1, 28, 28)),
}
REFERENCE_SEED = 10**6
RESULT = Path(__file__).resolve().parent / "results" / "latency_noise.json"


def measure_once(space_name: str, networks: int, seed: int) -> list[dict[str, float]]:
    """Run in a child process: every network's figures, in one fresh process."""
    import torch

    from archsearch.build import build_space
    from archsearch.hardware.protocol import interleaved_latencies, measure_network, runner

    torch.set_num_threads(1)
    config, shape = SPACES[space_name]
    space = build_space(config)
    archs = space.distinct_samples(np.random.default_rng(seed), networks)
    rows = []
    for arch in archs:
        torch.manual_seed(0)
        rows.append(measure_network(space.build(arch, shape, 10), shape))
    (reference,) = space.distinct_samples(np.random.default_rng(REFERENCE_SEED), 1)
    for runtime, figure in (("torch", "latency_ms"), ("onnx", "onnx_latency_ms")):
        torch.manual_seed(0)
        anchor = runner(space.build(reference, shape, 10), shape, runtime)
        for start in range(0, len(archs), 10):
            models = [space.build(a, shape, 10) for a in archs[start : start + 10]]
            measured, _ = interleaved_latencies([runner(m, shape, runtime) for m in models], anchor)
            for row, (ratio, _) in zip(rows[start : start + 10], measured, strict=True):
                row[f"{figure}_relative"] = ratio
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=sorted(SPACES), default="nb201")
    parser.add_argument("--networks", type=int, default=30)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", nargs="?", const=str(RESULT), default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_once(args.space, args.networks, args.seed)))
        return
    with harness.json_mode(args):
        meta = harness.header(args, settings=f"{args.space}, {args.networks} networks, "
                              f"{args.processes} processes")  # fmt: skip
        runs = []
        for process in range(args.processes):
            child = [sys.executable, __file__, "--child", "--space", args.space]
            child += ["--networks", str(args.networks), "--seed", str(args.seed)]
            done = subprocess.run(child, capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"process {process + 1}/{args.processes} done", flush=True)
        summary = {}
        for figure in (
            "latency_ms",
            "latency_ms_relative",
            "onnx_latency_ms",
            "onnx_latency_ms_relative",
            "peak_memory_mb",
        ):
            values = np.array([[row[figure] for row in run] for run in runs])  # process x net
            cv = values.std(axis=0, ddof=1) / values.mean(axis=0)
            entry = {
                "cv_median": float(np.median(cv)),
                "cv_p90": float(np.percentile(cv, 90)),
                "mean_of_networks": float(values.mean()),
            }
            if figure in ("latency_ms", "onnx_latency_ms"):
                spread = np.array(
                    [[row[figure.replace("_ms", "_iqr_ms")] for row in run] for run in runs]
                )
                entry["within_iqr_over_median"] = float(np.median(spread / values))
            summary[figure] = entry
            line = f"{figure:25s} CV across processes: median {entry['cv_median']:.3f}, "
            line += f"90th percentile {entry['cv_p90']:.3f}"
            if "within_iqr_over_median" in entry:
                line += f"; IQR/median within a measurement {entry['within_iqr_over_median']:.3f}"
            print(line)
    harness.write_json(args.json, {"space": args.space, "figures": summary, "meta": meta})


if __name__ == "__main__":
    main()
