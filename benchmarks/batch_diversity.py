"""How diverse a batch of parallel proposals is, with and without pending fantasies.

A study that evaluates ``N`` architectures at once asks ``N`` times before it tells; a
model-based strategy that ignores the pending proposals returns its ``N`` best distinct
candidates, typically variations of one choice. With ``fantasy="worst"`` (the constant
liar CL-min, :mod:`archsearch.strategy.model_based`) each ask first tells the model the
worst result so far for every pending proposal. This measures the difference on
NAS-Bench-201 (CIFAR-10 validation accuracy; mo-predictor also minimises #params):

* a warm start of ``--warm`` uniform random cells, told before anything is asked (the same
  cells for every variant of a seed);
* then ``--batch`` asks before any tell;
* **diversity**: the mean number of differing edge operations (of 6) over every pair of
  the batch, for its first 4 and for all of it; two uniform cells differ in 4.8
  (``6 * 4/5``), neighbours in 1;
* **accuracy**: the batch's mean and best CIFAR-10 *test* accuracy (fantasies should
  spread a batch, not waste it), and the CPU milliseconds per ask of the batch after the
  first.

``believer`` is the kriging believer (the model's own prediction as the fantasy) for the
strategies whose model predicts on the objective's scale (BANANAS' ensemble mean,
mo-predictor's GP means), measured to justify the constant liar as the default.

``--search Q`` adds a batched search: ``Q`` evaluations in rounds of ``--batch`` asks, each
round told in the order asked (a study with ``--batch`` workers that finish together),
from no warm start, single-objective for every strategy (mo-predictor is then GP Bayesian
optimisation, BOHB one full-fidelity bracket, i.e. its TPE alone); it reports the test
accuracy of the best cell by validation, beside the same search run sequentially
(``sequential``: one ask per tell, where fantasies never apply).

    python benchmarks/batch_diversity.py --search 100 > benchmarks/results/batch_diversity.txt
    python benchmarks/batch_diversity.py --strategies bohb,mo-predictor --seeds 3
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT.parent / "shared" / "data" / "nb201" / "nb201.csv"
STRATEGIES = ("bananas", "predictor-evolution", "bohb", "mo-predictor")
#: the variants measured per strategy: fantasy option values (believer: a subclass here)
VARIANTS = {
    "bananas": ("none", "worst", "believer"),
    "predictor-evolution": ("none", "worst"),
    "bohb": ("none", "worst"),
    "mo-predictor": ("none", "worst", "believer"),
}


def diversity(space, archs) -> float:
    """Mean number of differing decisions over every pair of ``archs``."""
    labels = [d.label for d in space.decisions]
    pairs = list(itertools.combinations(archs, 2))
    return float(np.mean([sum(a[k] != b[k] for k in labels) for a, b in pairs]))


def believer_class(name: str):
    """The strategy, lying with its model's own prediction for pending proposals."""
    from archsearch.strategy import STRATEGIES as REGISTRY

    base = REGISTRY.get(name)
    if name == "bananas":

        class Believer(base):
            def fantasy_scores(self, successes, pending):
                return [float(v) for v in self._model.predict(pending)]

    else:

        class Believer(base):
            def fantasy_values(self, y, pending):
                means = []
                for model in self._models:
                    mean, _ = model.predict(pending)
                    means.append(model._warp.inverse(mean) if model._warp is not None else mean)
                return np.stack(means, axis=1)

    return Believer


def run(name: str, variant: str, seed: int, warm: int, batch: int, table) -> dict:
    """One warm start and one batch of ``batch`` asks before any tell."""
    from archsearch.strategy import make_strategy
    from archsearch.tables.nb201 import nb201_costs

    space = table.space
    valid, test = table.column("cifar10_valid"), table.column("cifar10_test")
    params = nb201_costs()["params"]
    if variant == "believer":
        strategy = believer_class(name)(space, seed=seed)
    else:
        strategy = make_strategy(name, space, seed=seed, fantasy=variant)

    def values(arch):
        i = space.index(arch)
        if name == "mo-predictor":
            return (float(valid[i]), -float(params[i]) / 1e6)
        return (float(valid[i]),)

    rng = np.random.default_rng(10_000 + seed)
    cells = []
    while len(cells) < warm:
        arch = space.sample(rng)
        if arch not in cells:
            cells.append(arch)
    for arch in cells:
        strategy.tell(arch, values(arch))
    proposals, cpu = [], []
    for _ in range(batch):
        start = time.process_time()
        proposals.append(strategy.propose()[0])
        cpu.append(time.process_time() - start)
    accuracy = [float(test[space.index(a)]) for a in proposals]
    return {
        "distinct": len(set(proposals)) == len(proposals),
        "div4": diversity(space, proposals[:4]),
        "div": diversity(space, proposals),
        "mean_test": float(np.mean(accuracy)),
        "best_test": float(np.max(accuracy)),
        "ms": 1000 * float(np.mean(cpu[1:])),
    }


def search(name: str, variant: str, seed: int, queries: int, batch: int, table) -> float:
    """The test accuracy of the best cell by validation after a batched search."""
    from archsearch.strategy import make_strategy

    space = table.space
    valid, test = table.column("cifar10_valid"), table.column("cifar10_test")
    options = {"min_fidelity": 1, "max_fidelity": 1} if name == "bohb" else {}
    fantasy = "none" if variant == "sequential" else variant
    strategy = make_strategy(name, space, seed=seed, fantasy=fantasy, **options)
    width = 1 if variant == "sequential" else batch
    told: list[int] = []
    while len(told) < queries:
        round_ = [strategy.propose() for _ in range(min(width, queries - len(told)))]
        for arch, fidelity in round_:
            i = space.index(arch)
            strategy.tell(arch, (float(valid[i]),), fidelity=fidelity)
            told.append(i)
    best = max(told, key=lambda i: valid[i])
    return float(test[best])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--table", default=str(TABLE))
    parser.add_argument("--search", type=int, default=0, help="queries of a batched search")
    args = parser.parse_args(argv)
    import torch

    from archsearch.tables import load_nb201_table

    torch.set_num_threads(1)
    table = load_nb201_table(args.table)
    print(f"command: python benchmarks/batch_diversity.py {' '.join(argv or sys.argv[1:])}")
    print(
        f"machine: {platform.machine()}, 1 torch thread; NAS-Bench-201 CIFAR-10, warm start "
        f"{args.warm} random cells, {args.batch} asks before any tell, seeds 0-{args.seeds - 1}"
    )
    print(
        f"{'strategy':<20} {'fantasy':<9} {'distinct':>8} {'div@4':>12} "
        f"{'div@' + str(args.batch):>12} {'mean test':>10} {'best test':>10} {'ms/ask':>7}"
    )
    for name in args.strategies.split(","):
        for variant in VARIANTS[name]:
            rows = [
                run(name, variant, seed, args.warm, args.batch, table) for seed in range(args.seeds)
            ]

            def stat(key, rows=rows):
                v = np.array([r[key] for r in rows])
                return v.mean(), v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0

            d4, dn = stat("div4"), stat("div")
            print(
                f"{name:<20} {variant:<9} {sum(r['distinct'] for r in rows):>5}/{len(rows):<2}"
                f" {d4[0]:>6.2f} ± {d4[1]:.2f} {dn[0]:>6.2f} ± {dn[1]:.2f}"
                f" {stat('mean_test')[0]:>10.2f} {stat('best_test')[0]:>10.2f}"
                f" {stat('ms')[0]:>7.0f}",
                flush=True,
            )
    if not args.search:
        return 0
    print(
        f"\nbatched search: {args.search} queries in rounds of {args.batch}, no warm start; "
        "test accuracy of the best cell by validation, mean ± standard error over seeds"
    )
    print(f"{'strategy':<20} {'variant':<11} {'test accuracy':>16}")
    for name in args.strategies.split(","):
        for variant in ("none", "worst", "sequential"):
            best = [
                search(name, variant, seed, args.search, args.batch, table)
                for seed in range(args.seeds)
            ]
            error = np.std(best, ddof=1) / np.sqrt(len(best)) if len(best) > 1 else 0.0
            print(f"{name:<20} {variant:<11} {np.mean(best):>9.2f} ± {error:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
