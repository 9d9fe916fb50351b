"""``archsearch proxies``: score a sample of a benchmark's architectures with zero-cost
proxies and diagnose how well each ranks them against the benchmark's ground truth.

The ground truth is the table's ``<dataset>_test`` column (test accuracy after the
benchmark's full training); #params and FLOPs are always scored and reported as baselines,
and every row carries its bias (Spearman with #params and with FLOPs).
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import sys
import time
from typing import TYPE_CHECKING

from archsearch.checks import check_output_file
from archsearch.cli.types import seed
from archsearch.errors import ArchsearchError

if TYPE_CHECKING:
    import numpy as np

#: input shape and number of classes of the NAS-Bench-201 networks per dataset
NB201_DATASETS = {
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "imagenet16": ((3, 16, 16), 120),
}
BASELINES = ("params", "flops")
BATCHES = ("random", "fashion-mnist")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "proxies",
        help="diagnose zero-cost proxies on a sample of a benchmark table",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--space", default="nb201", help="search space (only nb201 has a table)")
    p.add_argument("--table", required=True, help="NAS-Bench-201 CSV (ground truth)")
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or imagenet16")
    p.add_argument("--sample", type=int, default=100, help="architectures to score")
    p.add_argument("--proxies", default="all", help="comma list of proxy names, or 'all'")
    p.add_argument("--seed", type=seed, default=0, help="seeds the sample, weights and batch")
    p.add_argument(
        "--batch",
        default="random",
        help="data for data-dependent proxies: random (Gaussian, data-free) or fashion-mnist",
    )
    p.add_argument("--batch-size", dest="batch_size", type=int, help="override every proxy's")
    p.add_argument("--data-dir", dest="data_dir", help="Fashion-MNIST directory")
    p.add_argument("--top-k", dest="top_k", type=int, default=10, help="K of best/worst rank")
    p.add_argument(
        "--fit-on",
        dest="fit_on",
        type=int,
        default=0,
        help="also fit proxy weights on this many sampled architectures (diagnosed on the rest)",
    )
    p.add_argument("--channels", type=int, default=16, help="network width C (benchmark: 16)")
    p.add_argument(
        "--cells-per-stage", dest="cells_per_stage", type=int, default=5, help="N (benchmark: 5)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--csv", help="write the diagnostics table to this CSV file")
    p.add_argument("--scores-out", dest="scores_out", help="write per-architecture scores (CSV)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=run)


def _check_fit_on(fit_on: int, sample: int) -> None:
    """``--fit-on`` leaves at least 3 of the sample to fit on and 3 held out to diagnose on,
    so it needs ``--sample`` >= 6; say that instead of naming an empty range."""
    if not fit_on:
        return
    if sample < 6:
        raise ArchsearchError(
            f"--fit-on needs --sample >= 6 (3 to fit on, 3 held out), got --sample {sample}"
        )
    if not 3 <= fit_on <= sample - 3:
        raise ArchsearchError(
            f"--fit-on must be in 3..{sample - 3} (the rest is held out), got {fit_on}"
        )


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise ArchsearchError(f"unknown --device {name!r}; devices: cpu, cuda, auto")
    if name == "cuda" and not torch.cuda.is_available():
        raise ArchsearchError("--device cuda, but no CUDA device is available")
    return name


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from archsearch.proxies import (
        diagnose_estimators,
        fit_proxy_weights,
        format_table,
        rank_average,
        resolve_proxy_names,
    )
    from archsearch.proxies.report import write_rows_csv
    from archsearch.proxies.runner import (
        DEFAULT_BATCH,
        fashion_mnist_batch,
        random_batch,
        score_architectures,
    )
    from archsearch.space import make_space
    from archsearch.space.registry import SPACES
    from archsearch.tables.nb201 import dataset_name, load_nb201_table

    # ---- validate everything before any work
    SPACES.get(args.space)
    if args.space != "nb201":
        raise ArchsearchError(
            f"archsearch proxies needs a space with a benchmark table; supported: nb201, "
            f"got {args.space!r}"
        )
    dataset = dataset_name(args.dataset)
    chosen = resolve_proxy_names(args.proxies)
    names = [*[b for b in BASELINES if b not in chosen], *chosen]
    if args.batch not in BATCHES:
        raise ArchsearchError(f"unknown --batch {args.batch!r}; batches: {', '.join(BATCHES)}")
    if not 2 <= args.sample <= 5**6:
        raise ArchsearchError(f"--sample must be in 2..{5**6}, got {args.sample}")
    if args.batch_size is not None and args.batch_size < 2:
        raise ArchsearchError(f"--batch-size must be >= 2, got {args.batch_size}")
    if args.top_k < 1:
        raise ArchsearchError(f"--top-k must be >= 1, got {args.top_k}")
    _check_fit_on(args.fit_on, args.sample)
    for path, flag in ((args.csv, "--csv"), (args.scores_out, "--scores-out")):
        if path is not None:
            check_output_file(path, flag, make_parents=False)
    device = _device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise ArchsearchError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    space = make_space("nb201", channels=args.channels, cells_per_stage=args.cells_per_stage)
    table = load_nb201_table(args.table)
    input_shape, num_classes = NB201_DATASETS[dataset]
    size = max(DEFAULT_BATCH, args.batch_size or 0)
    if args.batch == "fashion-mnist":
        inputs, targets = fashion_mnist_batch(
            size, input_shape, num_classes, seed=args.seed, device=device, data_dir=args.data_dir
        )
        batch_text = (
            f"Fashion-MNIST training images, resized 28x28 -> {input_shape[1]}x{input_shape[2]}"
            f" and replicated to {input_shape[0]} channels, their labels"
        )
    else:
        inputs, targets = random_batch(size, input_shape, num_classes, args.seed, device)
        batch_text = "random N(0, 1) images and uniform labels (data-free)"

    rng = np.random.default_rng(args.seed)
    indices = np.sort(rng.choice(len(table), size=args.sample, replace=False))
    archs = [space.from_index(int(i)) for i in indices]
    truth_column = f"{dataset}_test"
    truth = table.column(truth_column)[indices]

    print(f"command: {_command_line(args)}")
    print(
        f"ground truth: {truth_column} (test accuracy %, {args.table}); "
        f"{args.sample} architectures sampled with seed {args.seed}"
    )
    print(
        f"network: NAS-Bench-201 C={args.channels} N={args.cells_per_stage}, input "
        f"{'x'.join(map(str, input_shape))}, {num_classes} classes, initialised with seed "
        f"{args.seed}; device {device} ({platform.machine()})"
        + (
            ""
            if (args.channels, args.cells_per_stage) == (16, 5)
            else " -- not the benchmark's C=16 N=5, whose accuracies are the truth"
        )
    )
    print(
        f"batch: {batch_text}; rows per proxy: "
        f"{'its default' if args.batch_size is None else args.batch_size}"
    )

    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if args.quiet or not (done == total or done % max(1, total // 10) == 0):
            return
        end = "\n" if done == total or not tty else ""
        print(f"{chr(13) if tty else ''}scored {done}/{total}", end=end, file=sys.stderr)

    start = time.perf_counter()
    scores, seconds = score_architectures(
        space,
        archs,
        names,
        inputs,
        targets,
        num_classes=num_classes,
        seed=args.seed,
        batch_size=args.batch_size,
        on_progress=progress,
    )
    elapsed = time.perf_counter() - start

    estimators = dict(scores)
    combined_names = list(chosen)
    estimators["combined"] = rank_average(scores, combined_names)
    mean_seconds = {n: float(np.nanmean(s)) for n, s in seconds.items()}
    mean_seconds["combined"] = sum(mean_seconds[n] for n in combined_names)
    rows = diagnose_estimators(
        estimators,
        truth,
        params=scores["params"],
        flops=scores["flops"],
        top_k=args.top_k,
        seconds=mean_seconds,
    )
    fitted_note = None
    if args.fit_on:
        order = np.random.default_rng(args.seed + 1).permutation(args.sample)
        fit_idx, held_idx = order[: args.fit_on], order[args.fit_on :]
        known = np.full(args.sample, np.nan)
        known[fit_idx] = truth[fit_idx]
        weights = fit_proxy_weights(scores, known, combined_names)
        combined = weights.combine(scores)
        held = diagnose_estimators(
            {"combined-fitted": combined[held_idx]},
            truth[held_idx],
            params=scores["params"][held_idx],
            flops=scores["flops"][held_idx],
            top_k=args.top_k,
            seconds={"combined-fitted": mean_seconds["combined"]},
        )
        rows.extend(held)
        top = sorted(weights.as_dict().items(), key=lambda kv: -abs(kv[1]))[:5]
        fitted_note = (
            f"combined-fitted: weights fitted on {args.fit_on} architectures (Spearman "
            f"{weights.fit_spearman:.3f} there), diagnosed on the other {len(held_idx)}; "
            f"largest weights {', '.join(f'{n} {w:+.2f}' for n, w in top)}"
        )

    print()
    print(format_table(rows))
    print()
    print(
        f"rho/tau: Spearman/Kendall with {truth_column}; @10%/@5%: within the true top 10%/5%; "
        f"P@: precision at top 10%/5%; best/worst: true rank (1 = best) among each "
        f"estimator's top {rows[0]['top_k']}; rho(params)/rho(flops): bias toward size; "
        f"s/arch: mean CPU seconds per architecture (network build included)"
    )
    print(
        f"combined: mean rank of {', '.join(combined_names)}; a network whose output ignores "
        f"its input scores -inf and ranks last"
    )
    if fitted_note:
        print(fitted_note)
    print(f"total {elapsed:.1f} s for {args.sample} architectures")

    if args.csv:
        write_rows_csv(args.csv, [{"truth": truth_column, **r} for r in rows])
        print(f"wrote {args.csv}")
    if args.scores_out:
        _write_scores(args.scores_out, [space.to_string(a) for a in archs], scores, names)
        print(f"wrote {args.scores_out}")
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, every option spelled out."""
    flags = [
        ("--space", args.space),
        ("--table", args.table),
        ("--dataset", args.dataset),
        ("--sample", args.sample),
        ("--proxies", args.proxies),
        ("--seed", args.seed),
        ("--batch", args.batch),
        ("--batch-size", args.batch_size),
        ("--top-k", args.top_k),
        ("--fit-on", args.fit_on or None),
        ("--channels", args.channels),
        ("--cells-per-stage", args.cells_per_stage),
        ("--device", args.device),
    ]
    return "archsearch proxies " + " ".join(f"{k} {v}" for k, v in flags if v is not None)


def _write_scores(
    path: str, archs: list[str], scores: dict[str, np.ndarray], names: list[str]
) -> None:
    """One row per architecture: ``arch`` (benchmark string), then one column per proxy."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", *names])
        for i, arch in enumerate(archs):
            writer.writerow([arch, *(_number(scores[n][i]) for n in names)])


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else str(float(value))
