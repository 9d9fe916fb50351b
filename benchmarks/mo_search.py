"""Multi-objective search on tables: archsearch's multi-objective strategies beside Optuna's
NSGA-II and multi-objective TPE, the samplers a user would pick today.

**Problems.** Validation accuracy (max) against a cost (min): NAS-Bench-201 on each dataset
against #params and against FLOPs, and NAS-Bench-Graph on several datasets against latency.
Every query is a table lookup (microseconds), so the runs measure the samplers only.

**Samplers.** Every registered archsearch strategy that handles several objectives
(``max_objectives`` None or >= 2; found in the registry, so a new one is picked up), driven
through ask/tell as a one-worker study drives it and told the oriented vector
``(accuracy, -cost)``; Optuna's ``NSGAIISampler`` and multi-objective ``TPESampler``
(``optuna-nsga2``, ``optuna-motpe``), seeded with the run's seed, defaults otherwise, one
categorical parameter per decision, directions maximize accuracy / minimize cost, every
trial one query, repeats included, as a user would run them.

**Figure.** The hypervolume of the front of the queried architectures on the search
objectives, each objective normalised between the table's median (-> 0) and its best
(-> 1), with the reference point at the median, (0, 0): it measures the region of the
front users care about, and the table's own front gives the ceiling. Beside it, the
*test* front: the hypervolume of (test accuracy, cost) of the members of the validation
front, normalised in the same way with the test column. One run of ``max(--budget)``
queries per seed gives every smaller budget as its prefix (no sampler knows the budget).

**Constrained search.** Single-objective NAS-Bench-201 search of validation accuracy with a
hard constraint ``params <= P`` (``--params-quantile``: the table's 30th percentile by
default), reporting the test accuracy of the best feasible architecture by validation.
archsearch's strategies get the constraint as a study applies it to a value known before
evaluating: a proposal that breaks it is told ``tell(arch, None, feasible=False)`` and asked
again, and costs no query (a run gives up after 1,000 refusals in a row); Optuna's
``TPESampler`` with the same constraint (``trial.set_constraint``, Optuna 5's successor of
``constraints_func``) learns feasibility from evaluated trials, so each of its trials is a
query, infeasible ones included. The targets: no archsearch strategy ever evaluates an
infeasible cell, and the best of them beats TPE by more than the standard error.

**Ask overhead.** Milliseconds per ``ask()`` of each multi-objective sampler with 100 and
1,000 stored results (random cells of the first problem, told or added as finished trials).

**Targets**, printed first: for each problem at 100 and 200 queries, does the best archsearch
multi-objective strategy (random aside) beat Optuna's NSGA-II, MO-TPE and random search in
mean validation hypervolume by more than the standard error of the difference?

Runs go to worker processes (``--workers``, one torch thread each) and, with ``--cache``, to
a JSON-lines file keyed by the table's numbers too, so an interrupted benchmark resumes and a
changed cost table reruns what it changes. ``--json`` prints the figures as JSON.

    python benchmarks/mo_search.py --cache runs/mo_search.jsonl \\
        --plot benchmarks/results/mo_search.png --json benchmarks/results/mo_search.json \\
        > benchmarks/results/mo_search.txt
    python benchmarks/mo_search.py --problems nbg/cora/latency --seeds 3 --budget 20,50 \\
        --sections mo --json
"""

from __future__ import annotations

import argparse
import csv
import functools
import gzip
import hashlib
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

DEFAULT_TABLE = Path(__file__).resolve().parents[1].parent / "shared/data/nb201/nb201.csv"
NB201_DATASETS = ("cifar10", "cifar100", "imagenet16")
NB201_COSTS = ("params", "flops")
#: measured on the CIFAR-10 network by this project (archsearch.tables.nb201.nb201_hardware)
NB201_MEASURED = ("latency_ms", "onnx_latency_ms", "peak_memory_mb")
NBG_DATASETS = ("cora", "citeseer", "pubmed", "cs", "photo")
DEFAULT_PROBLEMS = (
    [f"nb201/{d}/{c}" for d in NB201_DATASETS for c in NB201_COSTS]
    + ["nb201/cifar10/latency_ms", "nb201/cifar10/onnx_latency_ms"]
    + [f"nbg/{d}/latency" for d in NBG_DATASETS]
)
#: Optuna's samplers as a user would build them (seeded, defaults otherwise)
OPTUNA_MO = ("optuna-nsga2", "optuna-motpe")
OPTUNA_CONSTRAINED = "optuna-tpe"
#: the baselines of the targets: what the best archsearch MO strategy must beat
BASELINES = ("optuna-nsga2", "optuna-motpe", "random")
TARGET_BUDGETS = (100, 200)
#: predictor-evolution costs ~25 s of CPU a run, all the others together ~3 s
CONSTRAINED_STRATEGIES = (
    "evolution", "predictor-evolution", "local", "random", OPTUNA_CONSTRAINED,
)  # fmt: skip
#: a constrained search gives up after this many refused proposals in a row
MAX_REFUSED = 1000
REFERENCE_POINT = (0.0, 0.0)
NORMALISATION = (
    "normalisation: each oriented objective v -> (v - median) / (best - median), median and "
    "best over the table's rows (accuracy: its maximum; cost: its minimum), so the table's "
    "median is 0 and the ideal point (1, 1); reference point (0, 0), the median. Test front: "
    "the validation front's members measured on test accuracy, normalised with the test column"
)
SECTIONS = ("mo", "constrained", "overhead")
#: registered as a strategy, but a one-shot method's result, not a search (imports torch)
NOT_SEARCHES = {"derived"}
RUN_KEY = ("section", "problem", "sampler", "seed", "bound")


# ------------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Scale:
    """Oriented objective vectors (accuracy, -cost) mapped so that the table's median is 0
    and its best is 1 on each axis: ``(v - median) / (best - median)``."""

    median: tuple[float, float]
    best: tuple[float, float]

    @classmethod
    def of(cls, accuracy: np.ndarray, cost: np.ndarray) -> Scale:
        return cls(
            median=(float(np.median(accuracy)), -float(np.median(cost))),
            best=(float(np.max(accuracy)), -float(np.min(cost))),
        )

    def __call__(self, accuracy: Any, cost: Any) -> np.ndarray:
        """The normalised oriented points of ``accuracy`` and ``cost`` (arrays or numbers)."""
        points = np.column_stack([np.atleast_1d(accuracy), -np.atleast_1d(cost)]).astype(float)
        median, best = np.array(self.median), np.array(self.best)
        return (points - median) / (best - median)

    def describe(self) -> dict[str, dict[str, float]]:
        return {
            "accuracy": {"median": self.median[0], "best": self.best[0]},
            "cost": {"median": -self.median[1], "best": -self.best[1]},
        }


def normalised_hypervolume(accuracy: Any, cost: Any, scale: Scale) -> float:
    """The hypervolume of the normalised points against the median, (0, 0): 0 for a front
    at (or below) the median, 1 for the ideal point (best accuracy at the least cost)."""
    from archsearch.strategy.pareto import hypervolume

    return hypervolume(scale(accuracy, cost), REFERENCE_POINT)


@dataclass(frozen=True, eq=False)  # hashed by identity: one per name and process
class Problem:
    """One table's rows: the space, the three columns, and the row of an architecture."""

    name: str
    space: Any
    valid: np.ndarray
    test: np.ndarray
    cost: np.ndarray
    row_of: Callable[[Any], int | None]  # None: the table has no row for it
    cost_source: str

    @property
    def cost_name(self) -> str:
        return self.name.rsplit("/", 1)[1]

    @functools.cached_property
    def scales(self) -> dict[str, Scale]:
        return {"valid": Scale.of(self.valid, self.cost), "test": Scale.of(self.test, self.cost)}

    @functools.cached_property
    def fingerprint(self) -> str:
        """Changes with the table's numbers (a new cost file makes cached runs stale)."""
        digest = hashlib.sha1()
        for column in (self.valid, self.test, self.cost):
            digest.update(np.ascontiguousarray(column, dtype=float).tobytes())
        return digest.hexdigest()[:12]

    @functools.cached_property
    def table_front_members(self) -> np.ndarray:
        """The rows of the whole table's validation front."""
        return front_rows(self.valid, self.cost)

    def table_front(self, column: str) -> float:
        """The hypervolume of the whole table's validation front (the ceiling), measured on
        ``column`` ('valid' or 'test') like a run's front."""
        rows = self.table_front_members
        accuracy = self.valid if column == "valid" else self.test
        return normalised_hypervolume(accuracy[rows], self.cost[rows], self.scales[column])


def front_rows(accuracy: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """The non-dominated rows of (accuracy max, cost min), by one sweep: pareto_mask's
    all-pairs comparison would need gigabytes for a 26,000-row table."""
    order = np.lexsort((cost, -accuracy))  # best accuracy first, the cheapest of ties first
    cheapest = np.minimum.accumulate(cost[order])
    # a row is dominated when a row before it (at least as accurate) is at least as cheap and
    # differs: it survives when strictly cheaper than all before it, or an exact duplicate
    before = np.concatenate([[np.inf], cheapest[:-1]])
    keep = cost[order] < before
    same = np.zeros(len(order), dtype=bool)
    same[1:] = (accuracy[order][1:] == accuracy[order][:-1]) & (cost[order][1:] == cost[order][:-1])
    for i in np.flatnonzero(same):  # duplicates of a front point stay, as in pareto_mask
        keep[i] = keep[i - 1]
    return np.sort(order[keep])


@functools.cache
def load_problem(name: str, table: str, costs: str | None) -> Problem:
    """``nb201/<dataset>/<params|flops>``, ``nb201/cifar10/<latency_ms|onnx_latency_ms|
    peak_memory_mb>`` (measured) or ``nbg/<dataset>/latency`` (cached per process)."""
    parts = name.split("/")
    if len(parts) != 3 or parts[0] not in ("nb201", "nbg"):
        raise SystemExit(
            f"unknown problem {name!r}: use nb201/<dataset>/<params|flops> or "
            f"nbg/<dataset>/latency, e.g. {DEFAULT_PROBLEMS[0]}"
        )
    benchmark, dataset, cost = parts
    if benchmark == "nb201":
        from archsearch.tables import load_nb201_table
        from archsearch.tables.nb201 import dataset_name

        dataset = dataset_name(dataset)
        if cost not in NB201_COSTS + NB201_MEASURED:
            raise SystemExit(
                f"NAS-Bench-201 costs: {list(NB201_COSTS + NB201_MEASURED)}, not {cost!r}"
            )
        nb201 = load_nb201_table(table)
        if cost in NB201_MEASURED:
            columns, source = measured_costs(dataset)
        else:
            columns, source = nb201_costs(dataset, costs)
        space = nb201.space
        return Problem(
            name, space, nb201.column(f"{dataset}_valid"), nb201.column(f"{dataset}_test"),
            columns[cost], space.index, source,
        )  # fmt: skip
    from archsearch.errors import DataError
    from archsearch.tables.nasbench_graph import load_nasbench_graph

    if cost not in ("latency", "params"):
        raise SystemExit(f"NAS-Bench-Graph costs: latency, params, not {cost!r}")
    graph = load_nasbench_graph(dataset)

    @functools.cache
    def row_of(arch: Any) -> int | None:  # the package's class hash costs ~50 us: once per cell
        try:
            return graph.row(arch)
        except DataError:
            return None

    return Problem(
        name, graph.space, graph.valid, graph.test, graph.column(cost), row_of,
        f"NAS-Bench-Graph {dataset} table ({cost})",
    )  # fmt: skip


@functools.cache
def nb201_costs(dataset: str, costs: str | None) -> tuple[dict[str, np.ndarray], str]:
    """#params and FLOPs of the 15,625 networks trained on ``dataset``, in index order, and
    where they come from.

    In order: the file ``costs`` (CIFAR-10's networks, for every dataset); the library's
    ``archsearch.tables.nb201.nb201_costs`` (each dataset's own network); else, for
    development only, the same counts made here.
    """
    from archsearch.space.nb201 import NB201Space

    if costs:
        return read_costs(Path(costs), NB201Space()), f"{costs} (CIFAR-10 networks)"
    try:
        from archsearch.tables.nb201 import nb201_costs as library_costs
    except ImportError:
        shape, classes = NB201_NETWORKS[dataset]
        return computed_costs(NB201Space(), dataset), (
            f"computed here with archsearch.hardware.cost on NB201Space().build(arch, {shape}, "
            f"{classes}): trainable parameters, FLOPs of one forward pass (2 per multiply-add, "
            "pooling not counted); a development fallback while the library has no nb201_costs"
        )
    return dict(library_costs(dataset)), (
        f"archsearch.tables.nb201.nb201_costs({dataset!r}): the {dataset} network's trainable "
        "parameters and FLOPs of one forward pass (2 per multiply-add, pooling not counted)"
    )


def measured_costs(dataset: str) -> tuple[dict[str, np.ndarray], str]:
    """The CIFAR-10 network's measured latency and memory, as the library ships them."""
    from archsearch.tables.nb201 import nb201_hardware

    if dataset != "cifar10":
        raise SystemExit(f"measured NAS-Bench-201 costs are the cifar10 network's, not {dataset}'s")
    return dict(nb201_hardware()), (
        "archsearch.tables.nb201.nb201_hardware(): the cifar10 network measured on this "
        "project's 2-core machine class (batch 1, one thread; benchmarks/build_nb201_latency.py)"
    )


def read_costs(path: Path, space: Any) -> dict[str, np.ndarray]:
    """A CSV (gzipped or not) with an ``index`` or ``arch`` column and ``params`` and
    ``flops`` columns (a unit suffix such as ``params_millions`` is accepted)."""
    if not path.is_file():
        raise SystemExit(f"no NAS-Bench-201 cost file at {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        names = {c: next((h for h in header if h.lower().startswith(c)), None) for c in NB201_COSTS}
        if None in names.values() or not {"index", "arch"} & set(header):
            raise SystemExit(f"{path}: need index or arch, params and flops columns; has {header}")
        out = {c: np.full(space.size(), np.nan) for c in NB201_COSTS}
        for row in reader:
            i = int(row["index"]) if "index" in row else space.index(space.from_string(row["arch"]))
            for c, column in names.items():
                out[c][i] = float(row[column])
    if any(np.isnan(v).any() for v in out.values()):
        raise SystemExit(f"{path}: not every NAS-Bench-201 architecture has costs")
    return out


#: the network NAS-Bench-201 trains on each dataset: input shape and classes (C=16, N=5)
NB201_NETWORKS = {"cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100),
                  "imagenet16": ((3, 16, 16), 120)}  # fmt: skip


def computed_costs(space: Any, dataset: str) -> dict[str, np.ndarray]:
    """#params and FLOPs of archsearch's network for ``dataset``, for development while the
    library has no cost table. Every edge's operation has its own weights and works on a
    fixed feature map, so both counts are the all-``none`` network's plus a fixed amount per
    1x1 and per 3x3 convolution: three builds give all 15,625."""
    import torch

    from archsearch.hardware.cost import count_flops, count_params

    torch.set_num_threads(1)
    labels = [d.label for d in space.decisions]
    shape, classes = NB201_NETWORKS[dataset]

    def counts(first: str) -> np.ndarray:
        ops = [first] + ["none"] * (len(labels) - 1)
        model = space.build(space.make(dict(zip(labels, ops, strict=True))), shape, classes)
        return np.array([count_params(model), count_flops(model, shape)], dtype=float)

    base, one, three = counts("none"), counts("nor_conv_1x1"), counts("nor_conv_3x3")
    n1, n3 = np.zeros(space.size()), np.zeros(space.size())
    for i in range(space.size()):
        ops = list(space.from_index(i).values())
        n1[i], n3[i] = ops.count("nor_conv_1x1"), ops.count("nor_conv_3x3")
    total = base + n1[:, None] * (one - base) + n3[:, None] * (three - base)
    return {"params": total[:, 0], "flops": total[:, 1]}


# --------------------------------------------------------------------------------- fronts
def hypervolume_curves(problem: Problem, rows: Sequence[int]) -> tuple[list[float], list[float]]:
    """After each query: the normalised hypervolume of the validation front of the queried
    rows, and that of the same members measured on test accuracy (-1: a failed query).

    The front is kept incrementally, so a 200-query curve costs milliseconds.
    """
    from archsearch.strategy.pareto import pareto_mask

    members = np.zeros(0, dtype=int)
    valid_hv, test_hv, current = [], [], (0.0, 0.0)
    for row in rows:
        if row >= 0:
            point = np.array([problem.valid[row], -problem.cost[row]])
            front = np.column_stack([problem.valid[members], -problem.cost[members]])
            if not np.any(np.all(front >= point, axis=1)):  # not weakly dominated: a change
                members = np.append(members, row)
                keep = pareto_mask(
                    np.column_stack([problem.valid[members], -problem.cost[members]])
                )
                members = members[keep]
                current = (
                    normalised_hypervolume(
                        problem.valid[members], problem.cost[members], problem.scales["valid"]
                    ),
                    normalised_hypervolume(
                        problem.test[members], problem.cost[members], problem.scales["test"]
                    ),
                )
        valid_hv.append(current[0])
        test_hv.append(current[1])
    return valid_hv, test_hv


# ----------------------------------------------------------------------------------- runs
def one_thread() -> None:
    """Pool initialiser: one torch thread per worker (a model-based strategy may use torch)."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def run_task(task: dict) -> dict:
    """One run, as the cache row it becomes, with its wall and CPU seconds in a one-thread
    worker (on a shared machine the wall time also measures the queue)."""
    problem = load_problem(task["problem"], task["table"], task["costs"])
    wall, cpu = time.perf_counter(), time.process_time()
    if task["section"] == "mo":
        rows = mo_search(problem, task["sampler"], task["seed"], task["queries"])
        took = time.perf_counter() - wall, time.process_time() - cpu
        valid_hv, test_hv = hypervolume_curves(problem, rows)
        extra = {"valid_hv": valid_hv, "test_hv": test_hv, "distinct": len(set(rows) - {-1})}
    else:
        result = constrained_search(
            problem, task["sampler"], task["seed"], task["queries"], task["bound"]
        )
        took = time.perf_counter() - wall, time.process_time() - cpu
        rows, extra = result.pop("rows"), result
    keys = ("section", "problem", "sampler", "seed", "queries", "bound")
    return {
        **{k: task[k] for k in keys},
        "data": problem.fingerprint,
        "seconds": took[0],
        "cpu_seconds": took[1],
        "rows": rows,
        **extra,
    }


def mo_search(problem: Problem, sampler: str, seed: int, queries: int) -> list[int]:
    """The rows one sampler queries, in order (-1 for a proposal the table has no row for)."""
    if sampler in OPTUNA_MO:
        return optuna_mo_search(problem, sampler, seed, queries)
    from archsearch.strategy import make_strategy

    strategy = make_strategy(sampler, problem.space, seed=seed)
    rows = []
    for _ in range(queries):
        arch = strategy.ask()
        row = problem.row_of(arch)
        if row is None:
            strategy.tell(arch, None)
            rows.append(-1)
        else:
            strategy.tell(arch, (float(problem.valid[row]), -float(problem.cost[row])))
            rows.append(int(row))
    return rows


def optuna_sampler(name: str, seed: int) -> Any:
    """NSGA-II for ``optuna-nsga2``, TPE otherwise (multi-objective in a study with two
    directions): seeded, their defaults otherwise."""
    import optuna

    if name == "optuna-nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def suggest(trial: Any, space: Any) -> Any:
    """One categorical parameter per decision; None when the space refuses the cell."""
    from archsearch.errors import InvalidArchitectureError

    choices = {
        d.label: trial.suggest_categorical(d.label, list(d.choices)) for d in space.decisions
    }
    try:
        return space.make(choices)
    except InvalidArchitectureError:
        return None


def optuna_mo_search(problem: Problem, sampler: str, seed: int, queries: int) -> list[int]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = optuna_sampler(sampler, seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=chosen)
    rows = []
    for _ in range(queries):  # every trial one query, repeats included
        trial = study.ask()
        arch = suggest(trial, problem.space)
        row = None if arch is None else problem.row_of(arch)
        tell_optuna(study, trial, problem, row)
        rows.append(-1 if row is None else int(row))
    return rows


def tell_optuna(study: Any, trial: Any, problem: Problem, row: int | None) -> None:
    """Values in the study's directions; a cell without a row is a failed trial, as when a
    user's objective raises."""
    import optuna

    if row is None:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        study.tell(trial, [float(problem.valid[row]), float(problem.cost[row])])


def constrained_search(
    problem: Problem, sampler: str, seed: int, queries: int, bound: float
) -> dict[str, Any]:
    """Validation accuracy with ``cost <= bound``: the rows evaluated, the test accuracy of
    the best feasible pick by validation after each query (NaN before one), how many of the
    evaluations broke the constraint, and how many proposals were refused before one."""
    if sampler == OPTUNA_CONSTRAINED:
        rows = optuna_constrained_search(problem, seed, queries, bound)
        refused, gave_up = 0, False
    else:
        rows, refused, gave_up = refusing_search(problem, sampler, seed, queries, bound)
    best_valid, best_test, curve = -math.inf, math.nan, []
    for row in rows:
        feasible = problem.cost[row] <= bound
        if feasible and problem.valid[row] > best_valid:  # ties keep the earlier pick
            best_valid, best_test = problem.valid[row], float(problem.test[row])
        curve.append(best_test)
    return {
        "rows": rows,
        "curve": curve,
        "infeasible_evaluations": int(sum(problem.cost[r] > bound for r in rows)),
        "refused": refused,
        "gave_up": gave_up,
    }


def refusing_search(
    problem: Problem, sampler: str, seed: int, queries: int, bound: float
) -> tuple[list[int], int, bool]:
    """An archsearch strategy with the constraint checked before evaluating, as a study
    checks it: the strategy is given the constraint as its ``admissible`` filter, and a
    proposal over the bound is told infeasible (no values) and asked again; it costs no
    query."""
    from archsearch.strategy import make_strategy

    strategy = make_strategy(sampler, problem.space, seed=seed)
    strategy.admissible = lambda arch: bool(problem.cost[problem.row_of(arch)] <= bound)
    rows: list[int] = []
    refused = 0
    while len(rows) < queries:
        for _ in range(MAX_REFUSED):
            arch = strategy.ask()
            row = problem.row_of(arch)
            if problem.cost[row] <= bound:
                break
            strategy.tell(arch, None, feasible=False)
            refused += 1
        else:
            return rows, refused, True  # the strategy proposes nothing feasible any more
        strategy.tell(arch, (float(problem.valid[row]),))
        rows.append(int(row))
    return rows, refused, False


def optuna_constrained_search(problem: Problem, seed: int, queries: int, bound: float) -> list[int]:
    """TPE told the constraint ``cost - bound <= 0`` of every trial, which is a query.

    ``trial.set_constraint`` is how Optuna 5 takes constraints (it replaced the sampler's
    ``constraints_func``, deprecated in 5.0, which set the same values after a trial); TPE
    ranks infeasible trials below every feasible one."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna_sampler(OPTUNA_CONSTRAINED, seed)
    )
    rows = []
    for _ in range(queries):
        trial = study.ask()
        row = problem.row_of(suggest(trial, problem.space))
        trial.set_constraint(problem.cost_name, float(problem.cost[row] - bound))
        study.tell(trial, float(problem.valid[row]))
        rows.append(int(row))
    return rows


# ------------------------------------------------------------------------------- overhead
def ask_overhead(task: dict) -> list[dict]:
    """Milliseconds per ask of each sampler with ``sizes`` results stored: distinct random
    architectures of the problem, told (archsearch) or added as finished trials (Optuna,
    with NSGA-II's generation numbers, so that its population is that history). The first
    ask after them may fit a model; the next ten each follow one new result."""
    problem = load_problem(task["problem"], task["table"], task["costs"])
    out = []
    for sampler in task["samplers"]:
        for size in task["sizes"]:
            stored = problem.space.distinct_samples(np.random.default_rng(0), size)
            make = optuna_asker if sampler in OPTUNA_MO else archsearch_asker
            ask, tell = make(problem, sampler, stored)
            times = []
            for _ in range(11):
                wall, cpu = time.perf_counter(), time.process_time()
                proposal = ask()
                times.append((time.perf_counter() - wall, time.process_time() - cpu))
                tell(proposal)
            first, later = np.array(times[0]) * 1e3, np.array(times[1:]) * 1e3
            out.append({
                "sampler": sampler, "stored": size,
                "first_wall_ms": first[0], "first_cpu_ms": first[1],
                "wall_ms": later[:, 0].mean(), "cpu_ms": later[:, 1].mean(),
                "cpu_ms_std": later[:, 1].std(),
            })  # fmt: skip
    return out


def oriented(problem: Problem, row: int | None) -> tuple[float, float] | None:
    """What an archsearch strategy is told: (accuracy, -cost), higher is better."""
    return None if row is None else (float(problem.valid[row]), -float(problem.cost[row]))


def archsearch_asker(problem: Problem, sampler: str, stored: list) -> tuple[Callable, Callable]:
    from archsearch.strategy import make_strategy

    strategy = make_strategy(sampler, problem.space, seed=0)
    for arch in stored:
        strategy.tell(arch, oriented(problem, problem.row_of(arch)))

    def tell(arch: Any) -> None:
        strategy.tell(arch, oriented(problem, problem.row_of(arch)))

    return strategy.ask, tell


def optuna_asker(problem: Problem, sampler: str, stored: list) -> tuple[Callable, Callable]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = optuna_sampler(sampler, seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=chosen)
    distributions = {
        d.label: optuna.distributions.CategoricalDistribution(list(d.choices))
        for d in problem.space.decisions
    }
    trials = []
    for i, arch in enumerate(stored):
        row = problem.row_of(arch)
        generation = None  # NSGA-II only reads trials that carry their generation
        if sampler == "optuna-nsga2":
            generation = {chosen._get_generation_key(): i // chosen.population_size}
        trials.append(optuna.trial.create_trial(
            params=dict(arch), distributions=distributions, system_attrs=generation,
            values=[float(problem.valid[row]), float(problem.cost[row])],
        ))  # fmt: skip
    study.add_trials(trials)

    def ask() -> tuple[Any, Any]:
        trial = study.ask()
        return trial, suggest(trial, problem.space)

    def tell(proposal: tuple[Any, Any]) -> None:
        trial, arch = proposal
        tell_optuna(study, trial, problem, None if arch is None else problem.row_of(arch))

    return ask, tell


# ---------------------------------------------------------------------------- statistics
def summary(values: Sequence[float]) -> dict[str, float]:
    """Mean, standard deviation over seeds (as nb201_search prints it) and the standard
    error of the mean (sample std / sqrt(n); NaN for one seed)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "se": math.nan, "n": 0}
    se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return {"mean": float(values.mean()), "std": float(values.std()), "se": se, "n": n}


def cell(stats: dict, digits: int = 3) -> str:
    """``mean ± std (se)``."""
    if not stats["n"]:
        return "-"
    se = f" ({stats['se']:.{digits}f})" if math.isfinite(stats["se"]) else ""
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}{se}"


def beats(best: dict, other: dict) -> dict[str, Any]:
    """The mean difference, its standard error (independent runs: the two standard errors
    in quadrature) and whether the difference exceeds it."""
    diff = best["mean"] - other["mean"]
    se = math.hypot(*(s["se"] if math.isfinite(s["se"]) else 0.0 for s in (best, other)))
    return {"difference": diff, "se": se, "beats": bool(diff > se)}


# -------------------------------------------------------------------------------- samplers
def mo_strategies() -> list[str]:
    """The registered archsearch strategies for several objectives, random last (the
    catalog's built-ins are imported by name: their modules never import torch)."""
    from archsearch.strategy import STRATEGIES

    names = []
    for name in (n for n in STRATEGIES.names() if n not in NOT_SEARCHES):
        strategy = STRATEGIES.get(name)
        limit = strategy.max_objectives
        if not strategy.uses_fidelity and (limit is None or limit >= 2):
            names.append(name)
    return sorted(names, key=lambda n: (n == "random", n))


def sampler_names(spec: str) -> list[str]:
    known = [*mo_strategies(), *OPTUNA_MO]
    names: list[str] = []
    for name in (s for s in spec.split(",") if s):
        if name not in known and name != "all":
            raise SystemExit(f"{name!r} is no multi-objective sampler; known: {', '.join(known)}")
        names += known if name == "all" else [name]
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--problems", default="all", help="comma list; all: " + ",".join(DEFAULT_PROBLEMS))
    add("--samplers", default="all", help="archsearch MO strategies, optuna-nsga2, optuna-motpe")
    add("--budget", default="50,100,200", help="queries; the largest is run, the rest prefixes")
    add("--sections", default=",".join(SECTIONS), help="comma list of " + ", ".join(SECTIONS))
    add("--table", default=str(DEFAULT_TABLE), help="the NAS-Bench-201 CSV")
    add("--costs", help="NAS-Bench-201 params/flops CSV(.gz); default: the library's file")
    add("--constrained-strategies", default=",".join(CONSTRAINED_STRATEGIES))
    add("--constrained-datasets", default=",".join(NB201_DATASETS))
    add("--constrained-budget", type=int, default=100)
    add("--params-quantile", type=float, default=0.3, help="P: this quantile of the #params")
    add("--overhead-sizes", default="100,1000", help="results stored before timing asks")
    add("--plot", type=Path, help="PNG of hypervolume against queries, a panel per problem")
    harness.add_common(parser, seeds=30, first_seed=True, workers=2, cache=True)
    args = parser.parse_args(argv)
    with harness.json_mode(args):
        report = run(args)
    harness.write_json(args.json, report)
    return report


def run(args: argparse.Namespace) -> dict:
    """The benchmark, printed; returns its figures for ``--json``."""
    sections = [s for s in args.sections.split(",") if s]
    if set(sections) - set(SECTIONS):
        raise SystemExit(f"unknown sections in {args.sections!r}; sections: {list(SECTIONS)}")
    names = DEFAULT_PROBLEMS if args.problems == "all" else args.problems.split(",")
    budgets = sorted(int(b) for b in args.budget.split(","))
    samplers = sampler_names(args.samplers)
    constrained_strategies = [s for s in args.constrained_strategies.split(",") if s]
    seeds = harness.seed_range(args)
    problem = functools.partial(load_problem, table=args.table, costs=args.costs)
    problems = {n: problem(n) for n in names if n} if {"mo", "overhead"} & set(sections) else {}
    report = harness.header(
        args,
        f"seeds {seeds[0]}..{seeds[-1]}; one run of {budgets[-1]} queries per seed, the "
        f"budgets {', '.join(map(str, budgets))} are its prefixes (no sampler knows the "
        "budget); samplers: " + ", ".join(samplers),
    )
    print(NORMALISATION)
    datasets = {n.split("/")[1] for n in problems if n.startswith("nb201/")}
    if "constrained" in sections:
        datasets |= {d for d in args.constrained_datasets.split(",") if d}
    for dataset in sorted(datasets):
        print(f"NAS-Bench-201 {dataset} costs: {nb201_costs(dataset, args.costs)[1]}")
    report["protocol"] = {
        "budgets": budgets, "queries_per_run": budgets[-1],
        "budgets_are_prefixes_of_one_run": True, "normalisation": NORMALISATION,
        "reference_point": list(REFERENCE_POINT), "samplers": samplers,
        "sections": sections,
    }  # fmt: skip

    tasks = []
    if "mo" in sections:
        for name, s, k in itertools.product(problems, samplers, seeds):
            tasks.append(dict(section="mo", problem=name, sampler=s, seed=k, bound=None,
                              queries=budgets[-1]))  # fmt: skip
    constrained: dict[str, float] = {}
    if "constrained" in sections:
        for dataset in (d for d in args.constrained_datasets.split(",") if d):
            name = f"nb201/{dataset}/params"
            constrained[name] = float(np.quantile(problem(name).cost, args.params_quantile))
            bound, queries = constrained[name], args.constrained_budget
            for s, k in itertools.product(constrained_strategies, seeds):
                tasks.append(dict(section="constrained", problem=name, sampler=s, seed=k,
                                  bound=bound, queries=queries))  # fmt: skip
    runs = do_runs(tasks, args, problem)
    report["run_seconds"] = round(args.run_seconds, 1)

    out: list[str] = []
    if "mo" in sections:
        report["problems"] = mo_tables(problems, samplers, seeds, budgets, runs, out)
        report["targets"] = mo_targets(report["problems"], samplers, budgets)
    if constrained:
        report["constrained"] = constrained_tables(
            {problem(n): b for n, b in constrained.items()}, constrained_strategies, seeds,
            args, runs, out,
        )  # fmt: skip
        report["constrained_targets"] = constrained_targets(report["constrained"])
    print("\n".join(target_lines(report) + out))
    if "overhead" in sections:
        name = next(iter(problems))
        task = {"problem": name, "table": args.table, "costs": args.costs, "samplers": samplers,
                "sizes": [int(s) for s in args.overhead_sizes.split(",")]}  # fmt: skip
        (rows,) = pool_map(ask_overhead, [task], args.workers)  # in a one-thread worker
        report["overhead"] = {"problem": name, "rows": rows}
        print_overhead(report["overhead"])
    if args.plot and "mo" in sections:
        plot(problems, samplers, runs, seeds, args.plot)
    cpu = sum(r.get("cpu_seconds", math.nan) for r in runs.values())
    report["cpu_seconds_of_all_runs"] = round(cpu, 1)
    print(
        f"\nwall time of the runs done now: {report['run_seconds']:.0f} s ({args.workers} "
        f"workers); CPU time of all {len(runs)} runs (cached ones included): {cpu:.0f} s"
    )
    return report


def do_runs(tasks: list[dict], args: argparse.Namespace, problem: Callable) -> dict:
    """Every task's run, from the cache or run now (and cached at once); keyed by
    (section, problem, sampler, seed, bound)."""
    cache = harness.Cache(
        args.cache,
        key=("section", "problem", "sampler", "seed", "bound", "data"),
        prefer=lambda old, new: new if len(new["rows"]) > len(old["rows"]) else old,
    )
    runs, todo = {}, []
    for task in tasks:
        key = tuple(task[k] for k in RUN_KEY)
        known = cache.get(*key, problem(task["problem"]).fingerprint)
        if known is not None and (len(known["rows"]) >= task["queries"] or known.get("gave_up")):
            runs[key] = known
        else:
            todo.append({**task, "table": args.table, "costs": args.costs})
    print(f"{len(todo)} runs to do, {len(tasks) - len(todo)} from the cache")
    sys.stdout.flush()
    start = time.perf_counter()
    for row in pool_map(run_task, todo, args.workers):
        cache.add(row)  # survives a kill
        runs[tuple(row[k] for k in RUN_KEY)] = row
    args.run_seconds = time.perf_counter() - start
    return runs


def pool_map(function: Callable, tasks: list, workers: int) -> Iterator:
    """``function`` over ``tasks`` in ``workers`` one-thread processes, in order; in this
    process for one worker (tests, debugging)."""
    if workers <= 1:
        yield from map(function, tasks)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=one_thread) as pool:
        yield from pool.map(function, tasks, chunksize=1)


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def per_run_seconds(done: list[dict]) -> dict[str, float]:
    return {
        "seconds_per_run": float(np.mean([r["seconds"] for r in done])),
        "cpu_seconds_per_run": float(np.mean([r.get("cpu_seconds", math.nan) for r in done])),
    }


def finished(runs: dict, section: str, name: str, sampler: str, seeds: range, bound=None):
    return [runs[k] for k in ((section, name, sampler, s, bound) for s in seeds) if k in runs]


def mo_tables(problems, samplers, seeds, budgets, runs, out: list[str]) -> dict:
    """Per problem and sampler: the hypervolumes at each budget, printed into ``out``."""
    report = {}
    for name, problem in problems.items():
        scales = problem.scales
        ceiling = {c: problem.table_front(c) for c in ("valid", "test")}
        v, t = scales["valid"], scales["test"]
        out.append(
            f"\n{name}: {name.split('/')[1]} validation accuracy (max) vs {problem.cost_name} "
            f"(min); normalised hypervolume of the queried front, mean ± std (std error), "
            f"{plural(len(seeds), 'seed')}"
        )
        out.append(
            f"  valid {v.median[0]:.4g} -> 0, {v.best[0]:.4g} -> 1; test {t.median[0]:.4g} -> 0,"
            f" {t.best[0]:.4g} -> 1; {problem.cost_name} {-v.median[1]:.4g} -> 0,"
            f" {-v.best[1]:.4g} -> 1; the table's own front: {ceiling['valid']:.3f} valid,"
            f" {ceiling['test']:.3f} test"
        )
        head = "".join(f"{f'valid @{b}':>23}" for b in budgets)
        head += "".join(f"{f'test @{b}':>23}" for b in budgets)
        out.append(f"  {'sampler':<18}{head}{'distinct':>10}{'s/run wall / CPU':>18}")
        results = {}
        for sampler in samplers:
            done = finished(runs, "mo", name, sampler, seeds)
            entry: dict[Any, Any] = {
                b: {
                    "valid_hv": summary([r["valid_hv"][b - 1] for r in done]),
                    "test_hv": summary([r["test_hv"][b - 1] for r in done]),
                }
                for b in budgets
            }
            entry.update(per_run_seconds(done))
            entry["distinct_at_max"] = float(np.mean([r["distinct"] for r in done]))
            results[sampler] = entry
            cells = "".join(f"{cell(entry[b]['valid_hv']):>23}" for b in budgets)
            cells += "".join(f"{cell(entry[b]['test_hv']):>23}" for b in budgets)
            out.append(
                f"  {sampler:<18}{cells}{entry['distinct_at_max']:>10.1f}"
                f"{entry['seconds_per_run']:>10.2f} / {entry['cpu_seconds_per_run']:<5.2f}"
            )
        report[name] = {
            "objectives": {"accuracy": f"{name.split('/')[1]} validation: max",
                           problem.cost_name: "min"},
            "cost_source": problem.cost_source,
            "normalisation": {c: scales[c].describe() for c in ("valid", "test")},
            "table_front_hv": ceiling,
            "results": results,
        }  # fmt: skip
    return report


def mo_targets(problems: dict, samplers: list[str], budgets: list[int]) -> list[dict]:
    """For each problem at 100 and 200 queries: does the best archsearch multi-objective
    strategy (by mean validation hypervolume; random is a baseline, not a candidate) beat
    NSGA-II, MO-TPE and random by more than the standard error of the difference?"""
    ours = [s for s in samplers if s not in OPTUNA_MO and s != "random"]
    checks = []
    for name, problem in problems.items():
        results = problem["results"]
        for b in (b for b in TARGET_BUDGETS if b in budgets):
            best = max(ours, key=lambda s: results[s][b]["valid_hv"]["mean"]) if ours else None
            versus = {
                other: beats(results[best][b]["valid_hv"], results[other][b]["valid_hv"])
                for other in BASELINES
                if best is not None and other in results
            }
            passed = bool(versus) and all(v["beats"] for v in versus.values())
            checks.append(
                {"problem": name, "budget": b, "best": best, "versus": versus, "passed": passed}
            )
    return checks


def constrained_tables(bounds: dict, strategies, seeds, args, runs, out: list[str]) -> dict:
    """Per dataset and strategy: the best feasible pick's test accuracy at the budget, and
    what the constraint cost, printed into ``out``."""
    budget = args.constrained_budget
    report = {}
    for problem, bound in bounds.items():
        feasible = problem.cost <= bound
        ceiling = float(problem.test[np.flatnonzero(feasible)[np.argmax(problem.valid[feasible])]])
        out.append(
            f"\nconstrained {problem.name} <= {bound:.4g} (the table's "
            f"{args.params_quantile:.0%} quantile; {feasible.mean():.1%} of the cells are "
            f"feasible): validation accuracy (max); test accuracy (%) of the best feasible "
            f"pick by validation at {budget} queries, mean ± std (std error), "
            f"{plural(len(seeds), 'seed')}. The table's best feasible cell by validation has "
            f"{ceiling:.2f} (a pick with a lower validation accuracy may test higher)."
        )
        out.append(
            f"  {'strategy':<22}{f'test @{budget}':>22}{'infeasible evaluated':>24}"
            f"{'refused (free)':>16}{'s/run wall / CPU':>18}"
        )
        results = {}
        for strategy in strategies:
            done = finished(runs, "constrained", problem.name, strategy, seeds, bound)
            infeasible = [r["infeasible_evaluations"] for r in done]
            picks = [r["curve"][budget - 1] for r in done if len(r["curve"]) >= budget]
            entry = {
                "test": summary(picks),
                "infeasible_evaluations": {"mean": float(np.mean(infeasible)),
                                           "total": int(sum(infeasible))},
                "refused_per_run": float(np.mean([r["refused"] for r in done])),
                "gave_up": int(sum(r["gave_up"] for r in done)),
                **per_run_seconds(done),
            }  # fmt: skip
            results[strategy] = entry
            evaluated = f"{np.mean(infeasible):.1f}/run ({sum(infeasible)} in all)"
            out.append(
                f"  {strategy:<22}{cell(entry['test'], 2):>22}{evaluated:>24}"
                f"{entry['refused_per_run']:>16.1f}{entry['seconds_per_run']:>10.2f} / "
                f"{entry['cpu_seconds_per_run']:<5.2f}"
            )
        report[problem.name] = {
            "constraint": f"params <= {bound}", "bound": bound,
            "quantile": args.params_quantile, "feasible_fraction": float(feasible.mean()),
            "ceiling_test": ceiling, "budget": budget, "results": results,
        }  # fmt: skip
    return report


def constrained_targets(constrained: dict) -> list[dict]:
    """No archsearch strategy evaluates an infeasible architecture, and the best of them
    beats Optuna's TPE with the same constraint in test accuracy by more than the SE."""
    checks = []
    for name, section in constrained.items():
        results = section["results"]
        ours = [s for s in results if s != OPTUNA_CONSTRAINED]
        if not ours:
            continue
        best = max(ours, key=lambda s: results[s]["test"]["mean"])
        infeasible = {s: results[s]["infeasible_evaluations"]["total"] for s in ours}
        versus = {}
        if OPTUNA_CONSTRAINED in results:
            versus[OPTUNA_CONSTRAINED] = beats(
                results[best]["test"], results[OPTUNA_CONSTRAINED]["test"]
            )
        passed = not any(infeasible.values()) and all(v["beats"] for v in versus.values())
        checks.append({"problem": name, "best": best, "infeasible_evaluations": infeasible,
                       "versus": versus, "passed": passed})  # fmt: skip
    return checks


def target_lines(report: dict) -> list[str]:
    """The targets, first in the output: how many pass and, by name, which fail."""
    out = ["\ntargets"]
    checks = report.get("targets")
    if checks is not None:
        out.append(
            "  multi-objective: at 100 and 200 queries the best archsearch MO strategy beats "
            f"{', '.join(BASELINES)} by more than the standard error of the difference (mean "
            "validation hypervolume)"
        )
        if not checks:
            out.append("  not checked: --budget has neither 100 nor 200")
        elif not any(c["best"] for c in checks):
            out.append("  FAIL everywhere: no archsearch MO strategy besides random is registered")
        out.append(f"  {sum(c['passed'] for c in checks)} of {len(checks)} (problem, budget) pass")
        for c in (c for c in checks if c["best"] and not c["passed"]):
            lost = [
                f"{o} ({v['difference']:+.3f}, se {v['se']:.3f})"
                for o, v in c["versus"].items()
                if not v["beats"]
            ]
            out.append(f"  FAIL {c['problem']} @{c['budget']}: {c['best']} vs {', '.join(lost)}")
    for c in report.get("constrained_targets", []):
        if c is report["constrained_targets"][0]:
            out.append(
                "  constrained: no archsearch strategy evaluates an infeasible cell, and the best "
                f"beats {OPTUNA_CONSTRAINED} (same constraint) in test accuracy by more than the "
                "standard error"
            )
        versus = c["versus"].get(OPTUNA_CONSTRAINED)
        detail = f" ({versus['difference']:+.2f}, se {versus['se']:.2f})" if versus else ""
        bad = [s for s, n in c["infeasible_evaluations"].items() if n]
        note = f"; {', '.join(bad)} evaluated infeasible cells" if bad else ""
        verdict = "pass" if c["passed"] else "FAIL"
        out.append(f"  {verdict} {c['problem']}: {c['best']} vs {OPTUNA_CONSTRAINED}{detail}{note}")
    return out


def print_overhead(overhead: dict) -> None:
    print(
        f"\nask overhead on {overhead['problem']}: ms per ask with that many random cells "
        "stored; the first ask (it may fit a model), then the mean of ten asks each after one "
        "new result. Wall and CPU time: on a shared machine the wall time also measures the queue"
    )
    print(
        f"  {'sampler':<18}{'stored':>7}{'first: wall / CPU ms':>24}{'per ask: wall / CPU ms':>28}"
    )
    for r in overhead["rows"]:
        print(
            f"  {r['sampler']:<18}{r['stored']:>7}{r['first_wall_ms']:>15.1f} / "
            f"{r['first_cpu_ms']:<7.1f}{r['wall_ms']:>17.1f} / {r['cpu_ms']:<7.1f}"
            f"(± {r['cpu_ms_std']:.1f})"
        )


def plot(problems: dict, samplers: list[str], runs: dict, seeds: range, path: Path) -> None:
    """Validation hypervolume against queries, a panel per problem: the mean over seeds, a
    band of ± one standard error (darker) and of ± one standard deviation (lighter)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(problems))
    rows = math.ceil(len(problems) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.8 * rows), squeeze=False)
    for ax, (name, problem) in zip(axes.flat, problems.items(), strict=False):
        for sampler in samplers:
            curves = np.array([r["valid_hv"] for r in finished(runs, "mo", name, sampler, seeds)])
            x = np.arange(1, curves.shape[1] + 1)
            mean, std = curves.mean(axis=0), curves.std(axis=0)
            se = curves.std(axis=0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1 else 0 * x
            style = "--" if sampler in BASELINES else "-"
            (line,) = ax.plot(x, mean, style, label=sampler, linewidth=1.4)
            ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.25, lw=0)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.07, lw=0)
        ax.axhline(problem.table_front("valid"), color="black", lw=0.8, ls=":", label="table")
        ax.set_title(f"{name} ({len(curves)} seeds)", fontsize=10)
        ax.set_xlabel("queries")
        ax.set_ylabel("hypervolume (validation)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(problems) :]:
        ax.axis("off")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(
        "hypervolume of the queried front; each objective normalised median -> 0, best -> 1,\n"
        "reference point (0, 0); bands: ± std error (dark), ± std (light)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
