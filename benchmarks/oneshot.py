"""One-shot NAS on NAS-Bench-201 / Fashion-MNIST, checked against the Fashion-MNIST table.

For each method (DARTS first and second order, GDAS, SPOS, RSPS, ENAS) this trains a reduced
supernet (the table's network size, C=8, N=1) on Fashion-MNIST and prints:

* per epoch: seconds, supernet train/valid loss, entropy of the architecture distribution,
  skip connections in the derived cell (DARTS's collapse shows here);
* search seconds per method, and seconds per supernet epoch on each available device (the
  full searches run on ``--device``; every other device gets a one-epoch timing run);
* the derived architecture's true accuracy: the table's row when the table holds it, else
  the architecture retrained from scratch with the table's recipe (seed = its NAS-Bench-201
  index, as the table's rows), and its rank among the table's architectures;
* the SPOS supernet's ranking quality: inherited-weight accuracy of every table architecture
  against its true validation accuracy (Kendall's tau, precision in the top 5%, ...).

The supernet trains on ``--train-size`` images of the training split that the table uses
(a superset of the table's own training images) and chooses architectures on the table's
validation images, never the test images. Run it as::

    python benchmarks/oneshot.py --table data/fmnist_nb201.csv --out runs/oneshot.json

``--quick`` shrinks everything to a smoke test of a few minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT / "data" / "fmnist_nb201.csv"

#: per method: constructor options (besides the shared ones) and epochs. The architecture
#: learning rates are the papers' 3e-4 scaled up for ~100x fewer steps (see the docstring of
#: archsearch.oneshot.differentiable); nothing here was tuned on the table.
METHODS: dict[str, dict[str, Any]] = {
    "darts": {"name": "darts", "epochs": 6, "options": {"arch_lr": 6e-3, "order": 1}},
    "darts-2nd": {"name": "darts", "epochs": 1, "options": {"arch_lr": 6e-3, "order": 2}},
    "darts-pt": {
        "name": "darts",
        "epochs": 6,
        "options": {"arch_lr": 6e-3, "selection": "perturbation"},
        "reuse": "darts",
    },
    "gdas": {"name": "gdas", "epochs": 8, "options": {"arch_lr": 1e-2}},
    "spos": {"name": "spos", "epochs": 8, "options": {"search_budget": 100}},
    "rsps": {"name": "rsps", "epochs": 8, "options": {"search_budget": 100}, "reuse": "spos"},
    "enas": {
        "name": "enas",
        "epochs": 8,
        "options": {"controller_steps": 50, "controller_lr": 3.5e-3, "final_samples": 20},
    },
}


def true_accuracy(arch, table, seed_offset: int = 0, force: bool = False) -> dict[str, Any]:
    """:func:`archsearch.oneshot.ranking.table_truth` (the table's row or a retraining)."""
    from archsearch.oneshot.ranking import table_truth

    return table_truth(arch, table, seed_offset=seed_offset, force=force)


def truth_noise(table, count: int, seed: int = 0) -> dict[str, Any]:
    """:func:`archsearch.oneshot.ranking.table_noise`, printed."""
    from archsearch.oneshot.ranking import table_noise

    report = table_noise(table, count, seed)
    print(f"  table noise (valid, seed vs seed+1): {json.dumps(report)}", flush=True)
    return report


def run_method(key: str, spec: dict, data, args, log) -> tuple[Any, Any]:
    from archsearch.oneshot import ONESHOT, build_supernet

    torch.manual_seed(args.seed)
    net = build_supernet("nb201", data.input_shape, data.num_classes, **args.supernet)
    epochs = 1 if args.quick else args.epochs.get(key, spec["epochs"])
    options = dict(spec["options"])
    if spec["name"] in ("spos", "rsps"):
        options["sampling"] = args.spos_sampling
    if args.quick:
        options.update(
            {k: min(v, 10) for k, v in options.items() if k in ("search_budget", "final_samples")}
        )
        if "controller_steps" in options:
            options["controller_steps"] = 10
    method = ONESHOT.get(spec["name"])(
        epochs=epochs,
        batch_size=args.batch_size,
        eval_size=args.eval_size,
        seed=args.seed,
        device=args.device,
        channels_last=args.channels_last,
        log=log,
        **options,
    )
    return method, method.search(net, data)


def time_epoch(spec: dict, data, args, device: str) -> float:
    """Seconds of one supernet training epoch of a method on ``device``."""
    from archsearch.oneshot import ONESHOT, build_supernet

    torch.manual_seed(args.seed)
    net = build_supernet("nb201", data.input_shape, data.num_classes, **args.supernet)
    options = {k: v for k, v in spec["options"].items() if k != "selection"}
    options.update({"search_budget": 1} if spec["name"] in ("spos", "rsps") else {})
    options.update({"final_samples": 1} if spec["name"] == "enas" else {})
    method = ONESHOT.get(spec["name"])(
        epochs=1, batch_size=args.batch_size, eval_size=args.eval_size, seed=args.seed,
        device=device, **options,
    )  # fmt: skip
    return method.search(net, data).history[0]["seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--channels-last", dest="channels_last", default="auto")
    parser.add_argument(
        "--epochs", action="append", default=[], metavar="METHOD=N",
        help="override a method's epochs, e.g. darts=25 (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--option", action="append", default=[], metavar="METHOD.KEY=JSON",
        help="override one of a method's options, e.g. gdas.arch_weight_decay=0 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--train-size", dest="train_size", type=int, default=8000)
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=64)
    parser.add_argument("--eval-size", dest="eval_size", type=int, default=1000)
    parser.add_argument("--rank-limit", dest="rank_limit", type=int, help="rank first N rows")
    harness.add_common(parser, threads=1)
    parser.add_argument(
        "--noise-rows", dest="noise_rows", type=int, default=0,
        help="retrain this many table rows with another seed to measure the table's noise",
    )  # fmt: skip
    parser.add_argument(
        "--spos-sampling", dest="spos_sampling", choices=("auto", "uniform", "fair"),
        default="auto", help="SPOS supernet training: one uniform path per step, FairNAS's "
        "K paths, or auto (the library default: fair on nb201)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one epoch each, tiny searches")
    parser.add_argument("--out", help="write every number as JSON here (after each method)")
    parser.add_argument(
        "--rerank", action="store_true",
        help="only redo the table comparisons of the run in --out against the current table",
    )  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with harness.json_mode(args):
        code, results = run(parser, args)
    harness.write_json(args.json, results, indent=2)
    return code


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[int, dict]:
    """The benchmark (or ``--rerank``), printed; the exit code and every number."""
    try:
        args.epochs = {k: int(v) for k, v in (e.split("=") for e in args.epochs)}
    except ValueError:
        parser.error(f"--epochs takes METHOD=N, got {args.epochs}")
    for override in args.option:
        target, _, value = override.partition("=")
        key, _, option = target.partition(".")
        if key not in METHODS or not option or not value:
            parser.error(f"--option takes METHOD.KEY=JSON with METHOD in {list(METHODS)}")
        try:
            METHODS[key] = {**METHODS[key], "options": {**METHODS[key]["options"],
                                                        option: json.loads(value)}}  # fmt: skip
        except json.JSONDecodeError:
            parser.error(f"--option {override}: {value!r} is not JSON")
    if args.rerank:
        if not args.out:
            parser.error("--rerank needs the --out JSON of an earlier run")
        return rerank(args)
    from archsearch.oneshot import Runtime, load_search_data, save_supernet
    from archsearch.tables.fmnist import load_fmnist_table

    table = load_fmnist_table(args.table)
    recipe = table.recipe["evaluator"]
    args.supernet = {k: v for k, v in table.recipe["space"].items() if k != "name"}
    unknown = [m for m in args.methods.split(",") if m and m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {list(METHODS)}")
    methods = [m for m in METHODS if m in args.methods.split(",")]
    data_recipe = {
        "dataset": recipe.get("dataset", "fashion-mnist"),
        "data_dir": recipe.get("data_dir"),
        "valid_size": recipe["valid_size"],
        "train_size": max(args.train_size, recipe["train_size"]),
        "seed": recipe.get("split_seed", 0),
    }
    data = load_search_data(**data_recipe)
    runtime = Runtime.resolve(args.device)
    head = harness.header(args, f"runtime: {runtime.describe()}; seed {args.seed}")
    print(f"table: {table.path} ({len(table)} architectures; recipe {json.dumps(table.recipe)})")
    print(
        f"supernet: nb201 {args.supernet}, {len(data.y_train)} training / {len(data.y_valid)} "
        f"validation images, batch {args.batch_size}, diagnostics on {args.eval_size} images"
    )
    column = table.column("fmnist_valid")
    top10, median = np.quantile(column, 0.9), np.median(column)
    print(
        f"table accuracy (valid): best {column.max():.2f}, top-10% threshold {top10:.2f}, "
        f"median {median:.2f}"
    )
    sys.stdout.flush()

    results: dict[str, Any] = {
        "machine": harness.machine_line(head["machine"]),
        "runtime": runtime.describe(),
    }
    if args.noise_rows:
        print("\n=== table noise ===", flush=True)
        results["table_noise"] = truth_noise(table, args.noise_rows, args.seed)
    trained: dict[str, Any] = {}
    for key in methods:
        spec = METHODS[key]
        print(f"\n=== {key} ({spec['name']} {spec['options']}) ===", flush=True)

        def log(record: dict, key: str = key) -> None:
            shown = {k: v for k, v in record.items() if k not in ("arch", "lr")}
            print(f"  {key} epoch {json.dumps(shown)}", flush=True)
            if "arch" in record:
                print(f"    derived {record['arch']}", flush=True)

        reuse = spec.get("reuse")
        started = time.perf_counter()
        if reuse in trained:
            result = reselect(key, spec, trained[reuse], data, args)
        else:
            method, result = run_method(key, spec, data, args, log)
            trained[key] = (method, result)
        seconds = time.perf_counter() - started
        truth = true_accuracy(result.arch, table)
        entry = {
            "arch": result.arch_string,
            "search_seconds": round(result.search_seconds, 1),
            "wall_seconds_incl_reuse": round(seconds, 1),
            "epochs_run": len(result.history),
            "stopped_early": result.stopped_early,
            "seconds_per_epoch": [h["seconds"] for h in result.history],
            "history": result.history,
            "true_accuracy": truth,
            "details": result.details,
        }
        print(f"  {key}: {result.arch_string}")
        print(f"  search seconds {result.search_seconds:.1f}; true accuracy {json.dumps(truth)}")
        if key == "spos":
            if args.out:
                checkpoint = Path(args.out).with_suffix(".spos_supernet.pt")
                save_supernet(checkpoint, result.supernet, data_recipe)
                entry["checkpoint"] = str(checkpoint)
            entry["ranking_vs_valid"] = rank_supernet(result.supernet, data, table, args)
        results[key] = entry
        write(results, args.out)

    others = [d for d in ("cpu", "cuda") if d != runtime.device.type]
    others = [d for d in others if d == "cpu" or torch.cuda.is_available()]
    timings: dict[str, dict[str, float]] = {runtime.device.type: {}}
    for key in methods:
        if "seconds_per_epoch" in results[key] and not METHODS[key].get("reuse"):
            timings[runtime.device.type][key] = float(np.median(results[key]["seconds_per_epoch"]))
    for device in others if not args.quick else []:
        timings[device] = {}
        for key in methods:
            if not METHODS[key].get("reuse"):
                timings[device][key] = time_epoch(METHODS[key], data, args, device)
    results["seconds_per_epoch"] = timings

    write(results, args.out)
    summarize(results, methods, timings)
    return 0, results


def rank_supernet(supernet, data, table, args) -> dict[str, Any]:
    """SPOS ranking quality: inherited-weight accuracy of every table row vs its truth."""
    from archsearch.diagnostics import kendall_tau
    from archsearch.oneshot import InheritedWeights, Runtime
    from archsearch.oneshot.ranking import table_ranking

    runtime = Runtime.resolve(args.device)
    scorer = InheritedWeights(supernet, data, runtime, eval_size=args.eval_size, seed=args.seed)
    report, estimates = table_ranking(scorer, table, "fmnist_valid", limit=args.rank_limit)
    # what the supernet's order follows instead: the size of the cell (Kendall vs #params)
    params = table.column("params")[: len(estimates)]
    report["kendall_estimate_vs_params"] = kendall_tau(estimates, params)
    report["kendall_truth_vs_params"] = kendall_tau(
        table.column("fmnist_valid")[: len(params)], params
    )
    print(f"  spos supernet ranking vs table fmnist_valid: {json.dumps(report)}", flush=True)
    return report


def write(results: dict[str, Any], out: str | None) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(results, indent=2, default=str))


def rerank(args) -> tuple[int, dict]:
    """Redo the table comparisons of an earlier run (``--out`` JSON) against the table as it
    is now: the table may have grown since (it is built row by row)."""
    from archsearch.oneshot import load_search_data, load_supernet
    from archsearch.oneshot.ranking import table_truth
    from archsearch.tables.fmnist import load_fmnist_table

    results = json.loads(Path(args.out).read_text())
    table = load_fmnist_table(args.table)
    methods = [k for k in METHODS if k in results]
    harness.header(args, f"rerank {args.out}")
    print(f"table: {table.path} ({len(table)} architectures)")
    for key in methods:
        arch = table.space.from_string(results[key]["arch"])
        results[key]["true_accuracy"] = table_truth(
            arch, table, known=results[key]["true_accuracy"]
        )
    if "checkpoint" in results.get("spos", {}):
        supernet, recipe = load_supernet(results["spos"]["checkpoint"])
        data = load_search_data(**recipe)
        results["spos"]["ranking_vs_valid"] = rank_supernet(supernet, data, table, args)
    write(results, args.out)
    summarize(results, methods, results.get("seconds_per_epoch", {}))
    return 0, results


def summarize(results: dict[str, Any], methods: list[str], timings: dict) -> None:
    print("\n=== summary ===")
    print(f"{'method':<10} {'search s':>9} {'s/epoch':>8} {'epochs':>6} {'valid':>7} "
          f"{'top %':>6} {'test':>7} {'top %':>6}  source")  # fmt: skip
    for key in methods:
        r = results[key]
        t = r["true_accuracy"]
        per_epoch = np.median(r["seconds_per_epoch"])
        print(
            f"{key:<10} {r['search_seconds']:>9.1f} {per_epoch:>8.1f} {r['epochs_run']:>6} "
            f"{t['valid']:>7.2f} {t['valid_rank']['top_percent']:>6.1f} {t['test']:>7.2f} "
            f"{t['test_rank']['top_percent']:>6.1f}  {t['source']}"
        )
    for device, per in timings.items():
        print(f"seconds per supernet epoch on {device}: {json.dumps(per)}")
    if "spos" in results:
        r = results["spos"]["ranking_vs_valid"]
        print(
            f"SPOS supernet vs table ({r['n']} archs): Kendall {r['kendall']:.3f}, Spearman "
            f"{r['spearman']:.3f}, precision@top5% {r['precision_top5']:.2f}, "
            f"{r['seconds']:.0f} s"
        )


def reselect(key: str, spec: dict, trained: tuple, data, args):
    """A second selection from an already trained supernet: RSPS searches the SPOS supernet
    at random; DARTS-PT selects by perturbation from the DARTS supernet (Wang et al. 2021
    apply it to a supernet trained by DARTS). Search seconds add the training's."""
    import dataclasses

    from archsearch.oneshot.selection import perturbation_selection

    method, result = trained
    started = time.perf_counter()
    if spec["name"] == "rsps":
        from archsearch.oneshot import ONESHOT

        other = ONESHOT.get("rsps")(
            epochs=1, batch_size=args.batch_size, eval_size=args.eval_size, seed=args.seed,
            device=args.device, **spec["options"],
        )  # fmt: skip
        for name in ("runtime", "net", "data", "rng", "generator"):
            setattr(other, name, getattr(method, name))
        arch, details = other._finalize()
    else:
        arch, trace = perturbation_selection(method)
        details = {"perturbation": trace}
    seconds = time.perf_counter() - started
    training = sum(h["seconds"] for h in result.history)
    return dataclasses.replace(
        result,
        method=key,
        arch=arch,
        arch_string=result.supernet.space.to_string(arch),
        search_seconds=training + seconds,
        details=details,
    )


if __name__ == "__main__":
    sys.exit(main())
