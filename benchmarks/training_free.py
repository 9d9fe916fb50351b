"""Training-free search on NAS-Bench-201 CIFAR-10: NASWOT search and TE-NAS, many seeds.

Each run chooses one architecture without training anything and reports its CIFAR-10 test
accuracy from the NAS-Bench-201 table, beside the published NASWOT 91.78 +- 1.45 (N=10) and
TE-NAS 93.9 +- 0.47, and the CPU seconds the choice took. CIFAR-10 itself is not on these
machines, so proxies read either Gaussian noise (``gaussian``: data-free) or Fashion-MNIST
training images resized to 32x32 and repeated over three channels (``fashion-mnist``); the
scored networks are the benchmark's own input shape (3x32x32, 10 classes).

* NASWOT (Mellor et al., ICML 2021): N random cells, each scored with the ``naswot`` proxy on
  the benchmark's network (C=16, N=5, as in the paper), best score wins.
* TE-NAS (Chen et al., ICLR 2021, Algorithm 1): prune the supernet (C=3, N=1 for the NTK,
  C=1, N=1 for linear regions, as in the authors' code) down to one operation per edge.

    python benchmarks/training_free.py --seeds 5 --naswot-n 10 --naswot-batch 128 \
        --data gaussian,fashion-mnist --table ../shared/data/nb201/nb201.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

DEFAULT_TABLE = Path(__file__).resolve().parents[1].parent / "shared/data/nb201/nb201.csv"
PUBLISHED = {"naswot": "91.78 +- 1.45 (N=10)", "tenas": "93.9 +- 0.47"}


def run_naswot(space, table, data: str, n: int, batch: int | None, seed: int):
    """NASWOT's choice: the best-scoring of the study screening's seeded sample of ``n``."""
    from archsearch.evaluate.proxy import ProxyEvaluator
    from archsearch.study.screening import distinct_sample, rank_sample

    started = time.process_time()
    scorer = ProxyEvaluator("naswot", data=data, batch_size=batch, input_shape=[3, 32, 32])
    arch = rank_sample(scorer, space, distinct_sample(space, seed, n), seed)[0][0]
    return arch, time.process_time() - started


def run_tenas(space, table, data: str, repeat: int, batch: int, seed: int):
    from archsearch.oneshot.tenas import tenas_prune

    result = tenas_prune(
        space, seed=seed, data=data, batch_size=batch, repeat=repeat, input_shape=[3, 32, 32]
    )
    return result.arch, result.cpu_seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    harness.add_common(
        parser, seeds=5, first_seed=True, threads=1, cache=True, seeds_help="runs per method, data"
    )
    parser.add_argument("--data", default="gaussian,fashion-mnist")
    parser.add_argument("--methods", default="naswot,tenas")
    parser.add_argument("--naswot-n", default="10", help="sample sizes N, comma list")
    parser.add_argument("--naswot-batch", type=int, default=128, help="the paper's 128")
    parser.add_argument("--tenas-repeat", type=int, default=3, help="the authors' default 3")
    parser.add_argument("--tenas-batch", type=int, default=16)
    args = parser.parse_args(argv)
    with harness.json_mode(args):
        report = run(args)
    harness.write_json(args.json, report)


def run(args: argparse.Namespace) -> dict:
    """The runs, printed; returns the table of them for ``--json``."""

    import torch

    from archsearch.space import NB201Space
    from archsearch.tables import load_nb201_table

    torch.set_num_threads(args.threads)
    table = load_nb201_table(args.table)
    space = NB201Space()  # C=16, N=5: the networks NASWOT scores
    test = table.column("cifar10_test")
    seeds = list(harness.seed_range(args))
    report = harness.header(
        args,
        f"seeds {seeds[0]}..{seeds[-1]}; reported: NAS-Bench-201 cifar10_test of the chosen cell",
    )
    # a finished run (its choice and CPU seconds) is kept in --cache and not redone
    cache = harness.Cache(args.cache, key=("method", "data", "setting", "seed"))
    print(
        f"reference: a uniformly random cell scores {test.mean():.2f} +- {test.std():.2f};"
        " the best cell 94.37"
    )
    rows = []
    for data in [d for d in args.data.split(",") if d]:
        for method in [m for m in args.methods.split(",") if m]:
            settings = (
                [(f"N={n}, batch {args.naswot_batch}", int(n)) for n in args.naswot_n.split(",")]
                if method == "naswot"
                else [(f"repeat {args.tenas_repeat}, batch {args.tenas_batch}", None)]
            )
            for label, n in settings:
                accs, secs = [], []
                for seed in seeds:
                    known = cache.get(method, data, label, seed)
                    if known is not None:
                        arch, cpu = space.from_string(known["arch"]), known["cpu_seconds"]
                    elif method == "naswot":
                        arch, cpu = run_naswot(space, table, data, n, args.naswot_batch, seed)
                    else:
                        arch, cpu = run_tenas(
                            space, table, data, args.tenas_repeat, args.tenas_batch, seed
                        )
                    if known is None:
                        cache.add(
                            {"method": method, "data": data, "setting": label, "seed": seed,
                             "arch": space.to_string(arch), "cpu_seconds": cpu}
                        )  # fmt: skip
                    acc = float(test[space.index(arch)])
                    accs.append(acc)
                    secs.append(cpu)
                    print(
                        f"  {method:6s} {data:13s} seed {seed}: {acc:.2f}  {cpu:6.1f} CPU s"
                        f"  {space.to_string(arch)}",
                        flush=True,
                    )
                rows.append((method, data, label, np.mean(accs), np.std(accs), np.mean(secs)))
    print()
    print(f"{'method':7s} {'proxy data':14s} {'setting':22s} {'test acc':>15s} {'CPU s/run':>10s}"
          f"  published")  # fmt: skip
    for method, data, label, mean, std, sec in rows:
        print(
            f"{method:7s} {data:14s} {label:22s} {mean:7.2f} +- {std:4.2f} {sec:10.1f}"
            f"  {PUBLISHED[method]}"
        )
    report["results"] = [
        {"method": m, "data": d, "setting": lab, "mean": a, "std": sd, "cpu_seconds": c}
        for m, d, lab, a, sd, c in rows
    ]
    return report


if __name__ == "__main__":
    main()
