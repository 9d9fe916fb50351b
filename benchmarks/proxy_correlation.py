"""Data-free zero-cost proxies against the NAS-Bench-201 table, and our Zen-score against the
reference Zen-scores in the shared table.

1. Zen check: Zen-score of ``--zen-sample`` architectures (C=16, N=5, 32x32x3, 10 classes)
   against the table's ``zen_cifar10`` column (computed by a public NAS library); target
   Spearman >= 0.9. Networks with no input-output path are -1e8 there and -inf here; they
   are compared separately and left out of the correlation.
2. synflow against CIFAR-10 test accuracy over ``--synflow-sample`` architectures (all
   15,625 by default), beside the published 0.74 of Abdelfattah et al. (ICLR 2021, Table 2;
   their best proxy, synflow's vote, 0.82).
3. The diagnostics table (:func:`archsearch.proxies.diagnose_estimators`) of the data-free
   proxies (synflow, zen, params, flops and their rank average) against ``cifar10_test``
   on the Zen sample, with every estimator's Spearman with #params and FLOPs (bias).

Scores go to ``--scores`` (CSV, one row per architecture) as they are computed, and a run
that finds the file resumes where it stopped; ``--max-seconds`` bounds a run, which then
reports on the architectures scored so far (a uniform random part of the synflow sample).

Cost: one architecture outside the Zen sample (build, params, FLOPs, synflow) takes about
0.10 CPU-seconds on one thread (40 architectures measured), so all 15,625 take about 26
CPU-minutes. Profiling showed half the time in ``copy.deepcopy`` of the network (the proxy
contract's private copies); since each network here is built only to be scored, it is
handed to the proxies as ``owned`` (:func:`score_owned`), which brought 0.15 s down to 0.10
with identical scores. FLOPs counting (torch's dispatch-level counter) is most of the rest.

    python benchmarks/proxy_correlation.py --zen-sample 1000 --synflow-sample 15625 \\
        --scores benchmarks/results/nb201_datafree_scores.csv --threads 1
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

DEFAULT_TABLE = Path(__file__).resolve().parents[1].parent / "shared/data/nb201/nb201.csv"
PUBLISHED_SYNFLOW = 0.74  # Abdelfattah et al. 2021, NAS-Bench-201 CIFAR-10, Spearman
COLUMNS = ("params", "flops", "synflow", "zen")


def load_cache(path: Path | None) -> dict[int, dict[str, float]]:
    if path is None or not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {
            int(row["index"]): {c: float(row[c]) for c in COLUMNS if row.get(c, "") != ""}
            for row in csv.DictReader(f)
        }


def score_owned(
    names: list[str], model: torch.nn.Module, x: torch.Tensor, seed: int, timings: dict
) -> dict[str, float]:
    """The proxies of a network built only to be scored, with as few deep copies as possible.

    A deep copy of a C=16, N=5 network costs as much as synflow itself, and the contract
    copies the model for every mutating proxy. Here the network is ours to spend
    (``owned=True``): #params and FLOPs read it first (neither changes anything: FLOPs runs
    one eval-mode, no-grad forward), and then the last mutating proxy (synflow) takes the
    network itself, so an architecture outside the Zen sample costs no copy at all and one
    inside it one copy (for Zen). The scores equal those of separate copies
    (``tests/test_proxies.py::test_an_owned_model_is_scored_like_a_copied_one``).
    """
    from archsearch.proxies import compute_proxies

    readers = [n for n in names if n in ("params", "flops")]
    mutators = [n for n in names if n not in readers]
    row = compute_proxies(readers, model, x, seed=seed, timings=timings, owned=True)
    row.update(compute_proxies(mutators, model, x, seed=seed, timings=timings, owned=True))
    return {n: row[n] for n in names}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--zen-sample", type=int, default=1000)
    parser.add_argument("--synflow-sample", type=int, default=5**6, help="15625 = all")
    parser.add_argument("--seed", type=int, default=0, help="seeds the samples and weights")
    harness.add_common(parser, threads=1)
    parser.add_argument("--scores", help="per-architecture score CSV (written, and resumed)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument(
        "--max-seconds", type=float, help="stop scoring after this long; report what is scored"
    )
    args = parser.parse_args(argv)
    with harness.json_mode(args):
        report = run(args)
    harness.write_json(args.json, report)


def run(args: argparse.Namespace) -> dict:
    """The three checks, printed; returns their figures for ``--json``."""
    from archsearch.proxies import diagnose_estimators, format_table, rank_average
    from archsearch.proxies.runner import random_batch
    from archsearch.space import NB201Space
    from archsearch.tables import load_nb201_table

    torch.set_num_threads(args.threads)
    table = load_nb201_table(args.table)
    space = NB201Space()
    n_total = len(table)
    rng = np.random.default_rng(args.seed)
    synflow_idx = np.sort(rng.choice(n_total, min(args.synflow_sample, n_total), replace=False))
    zen_idx = np.sort(
        np.random.default_rng(args.seed + 1).choice(n_total, args.zen_sample, replace=False)
    )
    x, _ = random_batch(16, (3, 32, 32), 10, seed=args.seed)  # data-free: only the shape

    report = harness.header(args)
    print(
        f"network: NAS-Bench-201 C=16 N=5, 3x32x32, 10 classes, initialised with seed "
        f"{args.seed}; samples: zen {len(zen_idx)} (seed {args.seed + 1}), synflow "
        f"{len(synflow_idx)} (seed {args.seed}) of {n_total}; truth cifar10_test"
    )

    cache_path = Path(args.scores) if args.scores else None
    cache = load_cache(cache_path)
    zen_set = set(zen_idx.tolist())
    # the Zen sample first, then the rest in a seeded random order, so that a run cut short
    # by --max-seconds has scored a uniform random subset of the synflow sample
    rest = np.random.default_rng(args.seed + 2).permutation(sorted(set(synflow_idx) - zen_set))
    todo = [*zen_idx.tolist(), *rest.tolist()]
    seconds = {c: [] for c in COLUMNS}
    new_file = cache_path is not None and not cache_path.is_file()
    out = open(cache_path, "a", newline="") if cache_path else None  # noqa: SIM115
    writer = csv.writer(out) if out else None
    if writer and new_file:
        writer.writerow(["index", "arch", *COLUMNS])
    start = time.perf_counter()
    done = 0
    try:
        for index in todo:
            if args.max_seconds is not None and time.perf_counter() - start > args.max_seconds:
                print(f"stopped after --max-seconds {args.max_seconds:.0f}", file=sys.stderr)
                break
            wanted = ["params", "flops", "synflow"] + (["zen"] if index in zen_set else [])
            have = cache.get(index, {})
            if all(w in have for w in wanted):
                continue
            arch = space.from_index(index)
            with torch.random.fork_rng():
                torch.manual_seed(args.seed)
                model = space.build(arch, (3, 32, 32), 10)
            timings: dict[str, float] = {}
            row = score_owned(wanted, model, x, args.seed, timings)
            for k, v in timings.items():
                seconds[k].append(v)
            cache[index] = row
            if writer:
                writer.writerow([index, space.to_string(arch), *(row.get(c, "") for c in COLUMNS)])
                out.flush()
            done += 1
            if done % 500 == 0:
                rate = (time.perf_counter() - start) / done
                print(f"  scored {done} new architectures, {rate:.3f} s each", file=sys.stderr)
    finally:
        if out:
            out.close()
    elapsed = time.perf_counter() - start
    zen_idx = np.array([i for i in zen_idx if "zen" in cache.get(i, {})], dtype=int)
    synflow_idx = np.array([i for i in synflow_idx if "synflow" in cache.get(i, {})], dtype=int)
    print(
        f"scored {done} architectures in {elapsed:.0f} s, {len(todo) - done} not scored now "
        f"(from the cache, or cut by --max-seconds); reporting zen on {len(zen_idx)} and "
        f"synflow on {len(synflow_idx)} architectures; "
        "mean seconds per network: "
        + ", ".join(f"{c} {np.mean(s):.3f}" for c, s in seconds.items() if s)
    )

    truth = table.column("cifar10_test")

    # ---- 1. Zen against the reference column
    ours = np.array([cache[i]["zen"] for i in zen_idx])
    reference = table.column("zen_cifar10")[zen_idx]
    dead_ref, dead_ours = reference < -1e7, ~np.isfinite(ours)
    keep = ~dead_ref & ~dead_ours
    rho = stats.spearmanr(ours[keep], reference[keep]).statistic
    tau = stats.kendalltau(ours[keep], reference[keep]).statistic
    diff = np.abs(ours[keep] - reference[keep])
    print()
    print(
        f"1. Zen-score vs reference zen_cifar10 on {keep.sum()} architectures: Spearman "
        f"{rho:.4f}, Kendall {tau:.4f} (target >= 0.9: {'met' if rho >= 0.9 else 'NOT met'}); "
        f"|ours - reference| median {np.median(diff):.2f}, 90th pct {np.percentile(diff, 90):.2f} "
        f"(reference range {reference[keep].min():.1f}..{reference[keep].max():.1f}); "
        f"no-path networks: {dead_ref.sum()} in the reference, {dead_ours.sum()} here, "
        f"{(dead_ref == dead_ours).sum()} of {len(zen_idx)} agree"
    )

    # ---- 2. synflow over the synflow sample
    syn = np.array([cache[i]["synflow"] for i in synflow_idx])
    syn_ranked = np.where(np.isfinite(syn), syn, np.nanmin(syn[np.isfinite(syn)]) - 1.0)
    rho_syn = stats.spearmanr(syn_ranked, truth[synflow_idx]).statistic
    print(
        f"2. synflow vs cifar10_test on {len(synflow_idx)} architectures: Spearman {rho_syn:.3f} "
        f"(published {PUBLISHED_SYNFLOW:.2f}, Abdelfattah et al. 2021); "
        f"{(~np.isfinite(syn)).sum()} no-path networks ranked last"
    )
    syn_rows = diagnose_estimators(
        {n: [cache[i][n] for i in synflow_idx] for n in ("synflow", "params", "flops")},
        truth[synflow_idx],
        params=[cache[i]["params"] for i in synflow_idx],
        flops=[cache[i]["flops"] for i in synflow_idx],
        top_k=args.top_k,
        seconds={c: float(np.mean(s)) if s else math.nan for c, s in seconds.items()},
    )
    print(format_table(syn_rows))
    report["zen_vs_reference"] = {"spearman": rho, "kendall": tau, "n": int(keep.sum())}
    report["synflow_spearman"] = {"spearman": rho_syn, "n": len(synflow_idx)}
    report["synflow_sample"] = syn_rows

    # ---- 3. data-free proxies on the Zen sample
    scores = {c: np.array([cache[i][c] for i in zen_idx]) for c in COLUMNS}
    estimators = {
        **scores,
        "rank_avg(synflow,zen)": rank_average(scores, ["synflow", "zen"]),
        "rank_avg(all 4)": rank_average(scores, list(COLUMNS)),
    }
    rows = diagnose_estimators(
        estimators,
        truth[zen_idx],
        params=scores["params"],
        flops=scores["flops"],
        top_k=args.top_k,
        seconds={c: float(np.mean(s)) if s else math.nan for c, s in seconds.items()},
    )
    print()
    print(f"3. data-free proxies vs cifar10_test on the {len(zen_idx)} Zen-sample architectures:")
    print(format_table(rows))
    print(
        "rho/tau: Spearman/Kendall; @10%/@5%: within the true top 10%/5%; P@: precision at "
        f"top 10%/5%; best/worst: true rank among the top {args.top_k}; rho(params)/rho(flops): "
        "bias; s/arch: mean seconds per network scored in this run (- if all came from the cache)"
    )
    report["zen_sample"] = rows
    return report


if __name__ == "__main__":
    main()
