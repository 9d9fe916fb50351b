"""The main job: a real architecture search on Fashion-MNIST, end to end, on a CPU.

1. ``archsearch search``: regularized evolution over the NAS-Bench-201 cell space (a reduced
   network: C=8 channels, one cell per stage), each candidate trained from scratch on a
   Fashion-MNIST training subset and scored on a validation split carved from the training
   set. The study lives in ``runs/main`` and resumes if this script is run again.
2. ``archsearch export``: the winner, with the weights trained during the search, saved with
   ``torch.export``.
3. A fresh Python process in which ``import archsearch`` fails loads the file with
   ``torch.export.load(...).module()`` and measures its accuracy on the 10,000 test images.
4. A randomly sampled architecture trained with the same recipe, for comparison.

    .venv/bin/python examples/main_job.py [--budget 20] [--out runs/main]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACE_OPTIONS = ["--space-opt", "channels=8", "--space-opt", "cells_per_stage=1"]
RECIPE = ["--epochs", "2", "--train-size", "10000"]

# Runs in a process where archsearch cannot be imported: torch, numpy and the IDX files only.
PLAIN_TORCH_CHECK = r"""
import gzip, json, sys
sys.modules["archsearch"] = None  # any import of archsearch now fails
import numpy as np, torch
path, data_dir = sys.argv[1], sys.argv[2]
def idx(name):
    with gzip.open(f"{data_dir}/{name}", "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
images = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz").copy()).float().div(255).unsqueeze(1)
labels = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
model = torch.export.load(path).module()
with torch.no_grad():
    predictions = torch.cat([model(b).argmax(1) for b in images.split(1000)])
print(json.dumps({"test_accuracy": 100.0 * (predictions == labels).float().mean().item()}))
"""


def archsearch(*args: str) -> str:
    command = [sys.executable, "-m", "archsearch", *args]
    print("$ archsearch", " ".join(args), flush=True)
    done = subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--out", default="runs/main")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = ROOT / args.out
    start = time.perf_counter()

    common = ["--dataset", "fashion-mnist", "--data-dir", args.data_dir, *RECIPE]
    if (out / "study.db").exists():
        archsearch("resume", str(out), "--json")
    else:
        archsearch(
            "search", "--space", "nb201", *SPACE_OPTIONS, "--strategy", "evolution",
            "--evaluator", "train", *common, "--budget", str(args.budget),
            "--seed", str(args.seed), "--out", str(out), "--json",
        )  # fmt: skip
    summary = json.loads(archsearch("show", str(out), "--json"))
    model_path = out / "model.pt2"
    archsearch("export", str(out), "--to", str(model_path))

    check = subprocess.run(
        [sys.executable, "-c", PLAIN_TORCH_CHECK, str(model_path), args.data_dir],
        check=True, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    exported = json.loads(check.stdout)["test_accuracy"]

    # the baseline: one random architecture, same space, recipe and seed
    import numpy as np

    from archsearch.components import build_evaluator, build_space

    space = build_space(summary["config"]["space"])
    random_arch = space.sample(np.random.default_rng(args.seed + 1))
    evaluator = build_evaluator(summary["config"]["evaluator"])
    baseline = evaluator.evaluate(random_arch, space, seed=args.seed)

    minutes = (time.perf_counter() - start) / 60
    best = summary["best"]
    print(f"\nsearch: {summary['n_evaluations']} architectures trained"
          f" in {summary['elapsed_seconds']:.0f} s")  # fmt: skip
    rows = [
        ("searched", best["arch"], best["objective"], exported),
        (
            "random",
            space.to_string(random_arch),
            baseline.values["valid_accuracy"],
            baseline.values["test_accuracy"],
        ),
    ]
    print(f"{'':<9} {'architecture':<88} {'valid %':>8} {'test %':>8}")
    for label, arch, valid, test in rows:
        print(f"{label:<9} {arch:<88} {valid:>8.2f} {test:>8.2f}")
    print("searched model: test accuracy measured by plain torch on the exported file")
    print(f'load it with:   torch.export.load("{model_path}").module()')
    print(f"total time: {minutes:.1f} min")


if __name__ == "__main__":
    main()
