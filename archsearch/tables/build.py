"""Building a Fashion-MNIST ground-truth table: the recipes, the seeded sample, one row's
training and the resumable, lock-protected append.

The table (:mod:`archsearch.tables.fmnist` loads it) is a fixed, seeded sample of
NAS-Bench-201 cells, each trained with one documented recipe; it is what data-dependent
proxies, predictors and supernets are checked against where CIFAR cannot be had.
``benchmarks/build_fmnist_table.py`` is the command line over :func:`build_table`; the
committed ``data/fmnist_nb201*.csv`` were written by it, so the row format here must not
change.

The sample is the first ``size`` entries of one seeded permutation of the 15,625 benchmark
indices (``numpy.random.default_rng(SAMPLE_SEED).permutation(15625)``, SAMPLE_SEED = 0), so
the architectures are the same on every run and a larger table extends a smaller one. Each
architecture trains with seed = its NAS-Bench-201 index (+ a replicate's seed offset), so
any row can be re-made alone.

Recipes (:data:`RECIPES`; a study-configuration fragment: the space and the evaluator that
train each cell):

* ``cpu``: C=8, N=1 network, 4,000 training images (a fixed subset of the 60,000),
  2 epochs of SGD (Nesterov, lr 0.05, cosine, batch 64), validation on 3,000 held-out
  training images, test on 3,000 images of the official test split. About 10 CPU seconds
  per cell on this project's machines, so 300 cells take about 50 CPU minutes.
* ``cpu-long``: the ``cpu`` network and splits with 8,000 training images and 4 epochs:
  about four times the cost, for checking whether a ranking follows longer training rather
  than the 2-epoch figures.
* ``gpu``: the benchmark's network (C=16, N=5), all 50,000/10,000 train/valid images and the
  full 10,000-image test split, 12 epochs: for when a GPU is lent.

Resuming: rows already in the file are skipped, each new row is appended with one write and
flushed to disk before the next architecture starts, and a half-written last line (a killed
run) is dropped on the next start. Rows are appended under an exclusive lock, so several
builders (on disjoint ranges, to use more cores) may fill one table at once.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.errors import DataError
from archsearch.tables.fmnist import COLUMNS

SAMPLE_SEED = 0
SPACE_SIZE = 5**6

#: Named recipes. ``cpu`` was chosen by measuring a few cells first: see the module docstring.
RECIPES: dict[str, dict[str, Any]] = {
    "cpu": {
        "name": "cpu",
        "space": {"name": "nb201", "channels": 8, "cells_per_stage": 1},
        "evaluator": {
            "name": "train",
            "dataset": "fashion-mnist",
            "epochs": 2,
            "batch_size": 64,
            "lr": 0.05,
            "train_size": 4000,
            "valid_size": 3000,
            "test_size": 3000,
            "device": "cpu",
        },
    },
    "cpu-long": {
        "name": "cpu-long",
        "space": {"name": "nb201", "channels": 8, "cells_per_stage": 1},
        "evaluator": {
            "name": "train",
            "dataset": "fashion-mnist",
            "epochs": 4,
            "batch_size": 64,
            "lr": 0.05,
            "train_size": 8000,
            "valid_size": 3000,
            "test_size": 3000,
            "device": "cpu",
        },
    },
    "gpu": {
        "name": "gpu",
        "space": {"name": "nb201", "channels": 16, "cells_per_stage": 5},
        "evaluator": {
            "name": "train",
            "dataset": "fashion-mnist",
            "epochs": 12,
            "batch_size": 256,
            "lr": 0.1,
            "train_size": 50000,
            "valid_size": 10000,
            "test_size": 10000,
            "device": "cuda",
        },
    },
}


def sample_indices(size: int, sample_seed: int = SAMPLE_SEED) -> list[int]:
    """The table's architectures: a prefix of one seeded permutation of all benchmark indices.

    A prefix of a fixed permutation (rather than a fresh ``choice`` per size) keeps the first
    300 architectures the same when the table is later grown to 500.
    """
    if not 0 < size <= SPACE_SIZE:
        raise ValueError(f"size must be in 1..{SPACE_SIZE}, got {size}")
    order = np.random.default_rng(sample_seed).permutation(SPACE_SIZE)
    return [int(i) for i in order[:size]]


def recipe_json(recipe: Mapping[str, Any]) -> str:
    """The recipe as stored in every row: canonical JSON, so equal recipes compare equal."""
    return json.dumps(recipe, sort_keys=True, separators=(",", ":"))


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def read_done(out: Path, recipe: Mapping[str, Any], seed_offset: int = 0) -> set[str]:
    """Architectures already in ``out``, after repairing a half-written last line.

    Refuses a file written with another recipe, another seed offset or another header: one
    table, one recipe, one seed per architecture.
    """
    if not out.exists():
        return set()
    with open(out, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):  # a run killed in mid-write: drop the partial row
            cut = data.rfind(b"\n") + 1
            f.truncate(cut)
            data = data[:cut]
    if not data:
        return set()
    rows = list(csv.reader(io.StringIO(data.decode())))
    if tuple(rows[0]) != COLUMNS:
        raise DataError(f"{out}: unexpected header {rows[0]}; expected {list(COLUMNS)}")
    wanted = recipe_json(recipe)
    done = set()
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(COLUMNS):
            raise DataError(f"{out}, line {line}: {len(row)} fields, expected {len(COLUMNS)}")
        if row[COLUMNS.index("recipe")] != wanted:
            raise DataError(
                f"{out}, line {line} was trained with another recipe; use another --out"
            )
        index, seed = int(row[COLUMNS.index("index")]), int(row[COLUMNS.index("seed")])
        if seed != index + seed_offset:
            raise DataError(
                f"{out}, line {line} was trained with seed offset {seed - index}, not "
                f"{seed_offset}; use another --out"
            )
        done.add(row[COLUMNS.index("arch")])
    return done


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Exclusive lock on ``out`` (created if missing) while reading or appending rows."""
    with open(out, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def append_row(
    out: Path, values: list[Any], recipe: Mapping[str, Any], seed_offset: int = 0
) -> bool:
    """Append one row with a single write and push it to disk (a kill loses at most it).

    Under the file lock, and only if no other builder has written the architecture
    meanwhile, so builders working on the same table (on disjoint ``--start`` ranges, to
    use more cores) never interleave or repeat rows. Returns whether the row was written.
    """
    with _locked(out):
        if values[COLUMNS.index("arch")] in read_done(out, recipe, seed_offset):
            return False
        new = out.stat().st_size == 0
        with open(out, "a", newline="") as f:
            f.write((_csv_line(list(COLUMNS)) if new else "") + _csv_line(values))
            f.flush()
            os.fsync(f.fileno())
    return True


Evaluate = Callable[[Any, int], Any]


def make_evaluate(recipe: Mapping[str, Any]) -> tuple[Any, Evaluate]:
    """The recipe's space and a function that trains one architecture with a seed."""
    from archsearch.components import build_evaluator, build_space

    space = build_space(recipe["space"])
    evaluator = build_evaluator(recipe["evaluator"])
    evaluator.check_space(space)
    return space, lambda arch, seed: evaluator.evaluate(arch, space, seed=seed)


def train_row(
    space: Any,
    evaluate: Evaluate,
    index: int,
    recipe: Mapping[str, Any],
    seed_offset: int = 0,
) -> list[Any] | None:
    """Train the cell with benchmark ``index`` (seed = index + ``seed_offset``) and return its
    table row, formatted as the committed tables store it; None when training diverged (a
    run with no accuracy has nothing to record, and is retried by the next build).

    ``space`` and ``evaluate`` are :func:`make_evaluate`'s, made once per table: building
    the evaluator loads the data set.
    """
    arch = space.from_index(index)
    started = time.perf_counter()
    result = evaluate(arch, index + seed_offset)
    seconds = time.perf_counter() - started
    metrics = result.values
    if result.diverged or metrics.get("test_accuracy") is None:
        return None
    return [
        index,
        space.to_string(arch),
        f"{float(metrics['valid_accuracy']):.4f}",
        f"{float(metrics['test_accuracy']):.4f}",
        int(metrics["params"]),
        int(metrics["flops"]),
        f"{float(metrics.get('train_seconds', seconds)):.3f}",
        recipe_json(recipe),
        index + seed_offset,
    ]


def build_table(
    out: str | Path,
    recipe: Mapping[str, Any],
    *,
    size: int = 300,
    start: int = 0,
    limit: int | None = None,
    sample_seed: int = SAMPLE_SEED,
    seed_offset: int = 0,
    log: Callable[[str], None] = print,
) -> int:
    """Train the sample's architectures ``start .. start+limit-1`` not yet in ``out``, each
    with seed = its index + ``seed_offset``.

    Returns the number of rows written by this call. Rows are appended under a lock on
    ``out`` (see :func:`append_row`), so several builders may fill one table at once.
    """
    from archsearch.space.nb201 import NB201Space

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        done = read_done(out, recipe, seed_offset)
    indices = sample_indices(size, sample_seed)
    stop = size if limit is None else min(size, start + limit)
    names = NB201Space()
    todo = [i for i in indices[start:stop] if names.to_string(names.from_index(i)) not in done]
    log(f"{len(done)} rows in {out}; {len(todo)} of positions {start}..{stop - 1} to train")
    if not todo:
        return 0
    space, evaluate = make_evaluate(recipe)
    written = 0
    for index in todo:
        arch = space.from_index(index)
        with _locked(out):
            if space.to_string(arch) in read_done(out, recipe, seed_offset):
                continue  # another builder got here first
        started = time.perf_counter()
        row = train_row(space, evaluate, index, recipe, seed_offset)
        seconds = time.perf_counter() - started
        if row is None:
            # a diverged run has no accuracy to record; it is retried on the next run
            log(f"{index} {space.to_string(arch)}: training diverged; no row written")
            continue
        if not append_row(out, row, recipe, seed_offset):
            log(f"{index} was written by another builder meanwhile; skipped")
            continue
        written += 1
        log(
            f"[{len(done) + written}] {index} {row[1]} valid {row[2]} test {row[3]}"
            f" params {row[4]} {seconds:.1f}s"
        )
    return written
