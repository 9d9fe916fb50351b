"""Training speed of the ``train`` evaluator against a bare PyTorch loop, side by side.

Both train the same NAS-Bench-201 network (same cell, width, seed) on the same in-memory
tensors with the same batch size, optimizer (SGD, Nesterov momentum 0.9, weight decay) and
number of steps. The baseline is the loop a user would write by hand: a per-epoch
``randperm``, index, forward, cross-entropy, ``zero_grad``, ``backward``, ``step``; nothing
else. It runs twice: in PyTorch's default NCHW layout, and in the channels-last layout the
evaluator uses on the CPU, so that the loop's overhead (target: evaluator/bare >= 0.95 in the
same layout) and the layout's gain are both visible. Repeats are interleaved so that a change
in machine load hits every variant alike; the median and min-max over repeats are printed.

Also printed: seconds of whole evaluations (build, FLOPs, training, validation and test
accuracy) of a few seeded random cells with the evaluator's default recipe, the figure a
search's budget is made of, and the accuracies they reach.

    .venv/bin/python benchmarks/train_throughput.py [--channels 8 --cells 1 --threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.data import ImageData, describe
from archsearch.evaluate.train import Recipe, TrainingEvaluator, train_model
from archsearch.space.nb201 import NB201Space

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

DEFAULT_ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
)


def bare_loop(
    model: torch.nn.Module, data: ImageData, recipe: Recipe, seed: int, channels_last: bool
) -> int:
    """The hand-written baseline; trains the same number of steps as the evaluator."""
    x, y = data.x_train, data.y_train
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=0.9, nesterov=True,
        weight_decay=recipe.weight_decay,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    n, batch = len(y), recipe.batch_size
    total, step = recipe.steps(n), 0
    while step < total:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch + 1, batch):
            if step == total:
                break
            index = order[start : start + batch]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
    return step * batch


def timed(run: Callable[[], int]) -> tuple[float, float]:
    """Images per wall second and per CPU second of the process."""
    wall, cpu = time.perf_counter(), time.process_time()
    images = run()
    return images / (time.perf_counter() - wall), images / (time.process_time() - cpu)


def spread(values: list[float], fmt: str = ".0f") -> str:
    """Median and range: ``median (min-max)``."""
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def load() -> str:
    return "load average " + harness.load_average().replace(",", "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--arch", default=DEFAULT_ARCH, help="NAS-Bench-201 cell string")
    parser.add_argument("--channels", type=int, default=8, help="C of the reduced network")
    parser.add_argument("--cells", type=int, default=1, help="cells per stage (N)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--train-size", type=int, default=5000, help="images per epoch")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    harness.add_common(parser, threads=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--full-evaluations", type=int, default=3,
        help="random cells to evaluate whole with the evaluator's default recipe (0: skip)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with harness.json_mode(args):
        report = run(args)
    harness.write_json(args.json, report)


def run(args: argparse.Namespace) -> dict:
    """The comparison, printed; returns its figures for ``--json``."""
    report = harness.header(args)
    print(f"before: {load()}")
    space = NB201Space(channels=args.channels, cells_per_stage=args.cells)
    arch = space.from_string(args.arch)
    evaluator = TrainingEvaluator(
        dataset=args.dataset, data_dir=args.data_dir, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, train_size=args.train_size, device="cpu",
    )  # fmt: skip
    data, recipe = evaluator.data, evaluator.recipe
    print(f"data: {describe(data)}")
    print(
        f"network: NB201 C={args.channels} N={args.cells} {args.arch}; batch {recipe.batch_size},"
        f" {recipe.steps(len(data.y_train))} steps of SGD (Nesterov, lr {recipe.lr},"
        f" wd {recipe.weight_decay}); seeds {args.seed}..{args.seed + args.repeats - 1}"
    )

    def fresh(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return space.build(arch, data.input_shape, data.num_classes)

    variants: dict[str, Callable[[int, Recipe], int]] = {
        "evaluator (train_model)": lambda seed, rc: train_model(fresh(seed), data, rc, seed).images,
        "bare loop, NCHW": lambda seed, rc: bare_loop(fresh(seed), data, rc, seed, False),
        "bare loop, channels-last": lambda seed, rc: bare_loop(fresh(seed), data, rc, seed, True),
    }
    # warm-up: first calls pay one-time costs (allocator, oneDNN kernel choice), not throughput
    warm = Recipe(epochs=10 * recipe.batch_size / len(data.y_train), batch_size=recipe.batch_size)
    for run in variants.values():
        run(args.seed, warm)
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.repeats):
        for name, run in variants.items():
            w, c = timed(lambda run=run, r=r: run(args.seed + r, recipe))
            wall[name].append(w)
            cpu[name].append(c)

    print(f"\nimages/second over {args.repeats} repeats: median (min-max)")
    print(f"{'':<26} {'per wall second':>24} {'per CPU second':>24}")
    for name in variants:
        print(f"{name:<26} {spread(wall[name]):>24} {spread(cpu[name]):>24}")
    evaluator_name = "evaluator (train_model)"
    for base in ("bare loop, channels-last", "bare loop, NCHW"):
        ratios = [
            statistics.median(t[evaluator_name]) / statistics.median(t[base]) for t in (wall, cpu)
        ]
        print(f"ratio evaluator / {base}: {ratios[0]:.3f} (wall)  {ratios[1]:.3f} (CPU)")
        report[f"ratio evaluator / {base}"] = {"wall": ratios[0], "cpu": ratios[1]}
    report["images_per_second"] = {"wall": wall, "cpu": cpu}

    if args.full_evaluations:
        default = TrainingEvaluator(dataset=args.dataset, data_dir=args.data_dir)
        print(
            f"\nwhole evaluations with the default recipe, {args.full_evaluations} random cells"
            f" (numpy seed {args.seed}): {describe(default.data)}"
        )
        rng = np.random.default_rng(args.seed)
        seconds: list[float] = []
        cpu_seconds: list[float] = []
        valid: list[float] = []
        test: list[float] = []
        for r in range(args.full_evaluations):
            cell = space.sample(rng)
            started, cpu_started = time.perf_counter(), time.process_time()
            result = default.evaluate(cell, space, seed=args.seed + r)
            seconds.append(time.perf_counter() - started)
            cpu_seconds.append(time.process_time() - cpu_started)
            valid.append(result.values["valid_accuracy"])
            test.append(result.values["test_accuracy"])
            m = result.values
            print(
                f"{space.to_string(cell)}: {seconds[-1]:.1f} s wall, {cpu_seconds[-1]:.1f} s CPU"
                f" (training {m['train_seconds']:.1f} s, accuracy {m['eval_seconds']:.1f} s wall);"
                f" valid {valid[-1]:.2f}%, test {test[-1]:.2f}%"
            )
        print(
            f"seconds per evaluation, median (min-max): {spread(seconds, '.1f')} wall,"
            f" {spread(cpu_seconds, '.1f')} CPU; valid accuracy {spread(valid, '.2f')}%,"
            f" test {spread(test, '.2f')}%"
        )
        report["full_evaluations"] = {
            "wall_seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "valid": valid,
            "test": test,
        }
    print(f"after: {load()}")
    return report


if __name__ == "__main__":
    main()
