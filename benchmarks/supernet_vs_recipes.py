"""Does a supernet rank cells as short or as longer training does? One checkpoint, two tables.

The Fashion-MNIST table's ``cpu`` recipe trains each cell for 2 epochs; a supernet trained
for 24 epochs ranked it worse than one trained for 8 (``results/oneshot_spos24.txt``).
This script scores the cells that two tables share (say the ``cpu`` table and a few dozen
rows built with ``build_fmnist_table.py --recipe cpu-long``) with a saved supernet's
inherited weights and prints Kendall's tau of every pair among supernet, short recipe and
long recipe, with #params beside them.

    python benchmarks/supernet_vs_recipes.py \
        --checkpoint benchmarks/results/oneshot_spos24.spos_supernet.pt \
        --short data/fmnist_nb201.csv --long data/fmnist_nb201_long.csv
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="save_supernet() file")
    parser.add_argument("--short", default="data/fmnist_nb201.csv")
    parser.add_argument("--long", required=True)
    parser.add_argument("--column", default="fmnist_valid")
    parser.add_argument("--eval-size", dest="eval_size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from archsearch.diagnostics import kendall_tau
    from archsearch.oneshot import InheritedWeights, Runtime, load_search_data, load_supernet
    from archsearch.tables.fmnist import load_fmnist_table

    short, long = load_fmnist_table(args.short), load_fmnist_table(args.long)
    net, recipe = load_supernet(args.checkpoint)
    space = net.space
    short_rows = {space.to_string(a): i for i, a in enumerate(short.architectures())}
    long_rows = {space.to_string(a): i for i, a in enumerate(long.architectures())}
    shared = [s for s in long_rows if s in short_rows]
    if len(shared) < 3:
        raise SystemExit(f"only {len(shared)} cells in both tables; need at least 3")
    truth_short = short.column(args.column)[[short_rows[s] for s in shared]]
    truth_long = long.column(args.column)[[long_rows[s] for s in shared]]
    params = long.column("params")[[long_rows[s] for s in shared]]

    started = time.perf_counter()
    scorer = InheritedWeights(
        net, load_search_data(**recipe), Runtime.resolve("cpu"), eval_size=args.eval_size
    )
    supernet = np.array([scorer.score(space.from_string(s))[0] for s in shared])
    print(f"{len(shared)} cells in both tables; scored in {time.perf_counter() - started:.0f} s")
    print(f"recipes: short {short.recipe['name']}, long {long.recipe['name']}; {args.column}")
    pairs = {
        "short recipe vs long recipe": (truth_short, truth_long),
        "supernet vs short recipe": (supernet, truth_short),
        "supernet vs long recipe": (supernet, truth_long),
        "#params vs short recipe": (params, truth_short),
        "#params vs long recipe": (params, truth_long),
    }
    for name, (a, b) in pairs.items():
        print(f"  Kendall's tau, {name:<28} {kendall_tau(a, b):.3f}")


if __name__ == "__main__":
    main()
