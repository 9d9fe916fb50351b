"""Seconds to score one NAS-Bench-201 network (C=16, N=5, 32x32x3, 10 classes) with every
registered proxy, on CPU.

Each architecture is scored as ``archsearch proxies`` scores it
(:func:`archsearch.proxies.runner.score_architectures`): the network is built (seeded), all
proxies score it on one random batch of 32 (each proxy reads its own documented number of
rows; see ``archsearch/proxies``), linear regions on its thin (C=1, N=1) copy as TE-NAS does.
Reports the median, spread and per-proxy medians over ``--archs`` architectures drawn at
random (seeded); one warm-up network, scored first, is not counted (the first call
initialises torch's flop counter and operator caches).

    python benchmarks/proxy_speed.py --archs 50 --threads 2

The time includes building the network. On a shared machine the load average (printed
before and after) inflates every number: compare runs only at similar load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=50, help="architectures timed")
    harness.add_common(parser, threads=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--proxies", default="all")
    args = parser.parse_args(argv)
    with harness.json_mode(args):
        report = run(args)
    harness.write_json(args.json, report)


def run(args: argparse.Namespace) -> dict:
    """The timing, printed; returns its figures for ``--json``."""
    from archsearch.proxies import resolve_proxy_names
    from archsearch.proxies.runner import DEFAULT_BATCH, random_batch, score_architectures
    from archsearch.space import NB201Space

    torch.set_num_threads(args.threads)
    names = resolve_proxy_names(args.proxies)
    space = NB201Space()
    x, y = random_batch(DEFAULT_BATCH, (3, 32, 32), 10, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    indices = rng.choice(5**6, size=args.archs + 1, replace=False)

    report = harness.header(args)  # its load average is the one before
    print(
        f"network: NAS-Bench-201 C=16 N=5, 3x32x32, 10 classes; {args.archs} architectures "
        f"(seed {args.seed}) after one warm-up; proxies: {', '.join(names)}"
    )
    totals, per_proxy = [], {n: [] for n in names}
    for k, index in enumerate(indices):
        arch = space.from_index(int(index))
        start = time.perf_counter()
        _, seconds = score_architectures(space, [arch], names, x, y, num_classes=10, seed=args.seed)
        total = time.perf_counter() - start
        if k == 0:
            print(f"warm-up network: {total:.2f} s (not counted)")
            continue
        totals.append(total)
        for n in names:
            per_proxy[n].append(float(seconds[n][0]))

    t = np.array(totals)
    q = np.percentile(t, [0, 25, 50, 75, 90, 100])
    print(
        f"seconds per network, all {len(names)} proxies: median {q[2]:.3f} "
        f"(min {q[0]:.3f}, Q1 {q[1]:.3f}, Q3 {q[3]:.3f}, p90 {q[4]:.3f}, max {q[5]:.3f}); "
        f"target < 2 s: {'met' if q[2] < 2 else 'NOT met'}"
    )
    print("per proxy, median (p90) seconds (network builds shared out among the proxies):")
    for n in sorted(names, key=lambda n: -np.median(per_proxy[n])):
        v = np.array(per_proxy[n])
        print(f"  {n:15s} {np.median(v):.3f} ({np.percentile(v, 90):.3f})")
    print(f"load average after {harness.load_average()}")
    quantiles = ("min", "q1", "median", "q3", "p90", "max")
    report["seconds_per_network"] = dict(zip(quantiles, q, strict=True))
    report["per_proxy_median"] = {n: float(np.median(per_proxy[n])) for n in names}
    report["load_average_after"] = harness.load_average()
    return report


if __name__ == "__main__":
    main()
