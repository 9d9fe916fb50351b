"""The written contracts, checked for every registered component.

Parametrized over every built-in strategy, space and evaluator (``archsearch/catalog.py``),
so a new component is tested as soon as it is registered. The contracts are the module
docstrings of :mod:`archsearch.strategy.base`, :mod:`archsearch.evaluate.base`,
:mod:`archsearch.space.base`, :mod:`archsearch.study.storage` and
:mod:`archsearch.study.study`.

A new evaluator needs an entry in ``EVALUATOR_CASES`` and a new space one in
``SPACE_CASES`` (how to build a small instance); the tests fail until it has one. A new
strategy runs with its default options unless ``STRATEGY_OPTIONS`` gives smaller ones.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import archsearch.components  # noqa: F401  (fills the registries)
from archsearch.catalog import BUILTIN
from archsearch.components import build_components, build_evaluator, build_space
from archsearch.errors import ArchsearchError
from archsearch.strategy import STRATEGIES, make_strategy
from archsearch.study import Study
from archsearch.tables import load_nb201_table

NB201_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nb201" / "nb201.csv"
TINY_NB201 = {"name": "nb201", "channels": 2, "cells_per_stage": 1}
TINY_INPUTS = {"data": "gaussian", "input_shape": [3, 8, 8]}

#: small, non-default options: small so that slow strategies stay quick, non-default so that
#: the options round trip would notice an option that ``options()`` forgets
STRATEGY_OPTIONS: dict[str, dict] = {
    "evolution": {"population_size": 4, "sample_size": 2},
    "local": {"initial": 3},
    "reinforce": {"lr": 0.3, "entropy": 0.02},
    "hyperband": {"min_fidelity": 1, "max_fidelity": 9, "eta": 3},
    "bohb": {"min_fidelity": 1, "max_fidelity": 9, "eta": 3, "random_fraction": 0.5},
    "bananas": {"initial": 4, "candidates": 10, "parents": 3, "members": 2, "update_steps": 5},
    "nsga2": {"population_size": 6, "initial": 3, "crossover_rate": 0.8},
    "mo-evolution": {"population_size": 8, "sample_size": 3, "initial": 4},
    "mo-predictor": {"initial": 4, "parents": 4, "candidates": 30, "samples": 5},
    "predictor-evolution": {
        "initial": 4, "population_size": 6, "sample_size": 2, "candidates": 10,
        "tournaments": 3, "width": 8, "epochs": 5, "min_steps": 10, "update_steps": 5,
    },
}  # fmt: skip
#: strategies that train a predictor or score networks on every run: over ~2 s a test
SLOW_STRATEGIES = {"bananas", "predictor-evolution"}
#: evaluations of a strategy test (and of each study of the resume test)
STEPS = 14


def builtin(kind):
    """The built-in components of a kind, from the catalog (components that test modules
    register for their own use are not archsearch's)."""
    return sorted(BUILTIN[kind])


def _params(names, slow):
    return [pytest.param(n, marks=[pytest.mark.slow] if n in slow else []) for n in names]


# ------------------------------------------------------------------ small data
def write_small_table(path: Path) -> Path:
    """A 3 x 3 x 3 product with 4 rows left out: a small, constrained (sparse) table."""
    rows = []
    for i, (a, b, c) in enumerate(itertools.product([1, 2, 3], ["x", "y", "z"], ["p", "q", "r"])):
        if i % 7 == 3:
            continue
        rows.append((a, b, c, round(10 + 3 * a + (ord(b) * 7 + ord(c) * 5) % 11 * 0.5, 3), a * 10))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "c", "accuracy", "cost"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def small_table(tmp_path_factory) -> Path:
    return write_small_table(tmp_path_factory.mktemp("contracts") / "small.csv")


def table_space_config(table: Path) -> dict:
    return {"name": "table", "table": str(table), "objective": "accuracy", "metrics": ["cost"]}


def table_evaluator_config(table: Path) -> dict:
    return {"name": "table", "table": str(table), "objective": "accuracy", "reported": "cost"}


def nb201_evaluator_config() -> dict:
    if not NB201_CSV.is_file():
        pytest.fail(f"NAS-Bench-201 table missing at {NB201_CSV}")
    return {"name": "nb201-table", "table": str(NB201_CSV), "dataset": "cifar10"}


# A define-by-run factory at module level, so that the space records it by import string.
def toy_factory(input_shape, num_classes):
    """depth in {1, 2}, a width per layer in {2, 4}, a pooling: 2 * (2 + 4) = 12 models."""
    from torch import nn

    from archsearch.space import choice

    layers, channels = [], input_shape[0]
    for i in range(choice("depth", [1, 2])):
        width = choice(f"layer{i}.width", [2, 4])
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
        channels = width
    pool = nn.AdaptiveAvgPool2d(1) if choice("pool", ["avg", "max"]) == "avg" else None
    pool = pool or nn.AdaptiveMaxPool2d(1)
    return nn.Sequential(*layers, pool, nn.Flatten(), nn.Linear(channels, num_classes))


# ------------------------------------------------------------------ strategies
STRATEGY_SPACES = ["nb201", "table"]


@pytest.fixture(params=STRATEGY_SPACES)
def setting(request, small_table):
    """(space, evaluator, constraint) configurations of a study the strategy can run on; the
    constraint makes some trials infeasible, so that resuming replays infeasible tells."""
    if request.param == "nb201":
        return (
            TINY_NB201,
            nb201_evaluator_config(),
            {"name": "nb201_index", "op": ">=", "bound": 2000},
        )
    constraint = {"name": "cost", "op": "<=", "bound": 20}
    return table_space_config(small_table), table_evaluator_config(small_table), constraint


def synthetic(space, arch) -> float:
    """A deterministic objective of the one-hot encoding (distinct architectures differ)."""
    code = space.encode(arch)
    weights = np.random.default_rng(7).normal(size=len(code))
    return float(code @ weights)


def new_strategy(name, space, seed=0, **options):
    """The strategy with the test's small options (every strategy must take every space)."""
    return make_strategy(name, space, seed=seed, **(options or STRATEGY_OPTIONS.get(name, {})))


def first_proposal(strategy):
    return strategy.propose()


def drive(strategy, space, steps=STEPS):
    """A fixed sequence of proposals and tells: batches of three parallel proposals, told in
    reverse order, every fourth a failure and every fifth infeasible."""
    proposals, batch, told = [], [first_proposal(strategy)], 0
    while told < steps:
        while len(batch) < 3 and told + len(batch) < steps:
            batch.append(strategy.propose())
        proposals += batch
        for arch, fidelity in reversed(batch):
            values = None if told % 4 == 1 else (synthetic(space, arch),)
            strategy.tell(arch, values, feasible=told % 5 != 3, fidelity=fidelity)
            told += 1
        batch = []
    return proposals


@pytest.mark.parametrize("name", _params(builtin("strategy"), SLOW_STRATEGIES))
def test_parallel_asks_are_distinct_members_and_any_tell_is_accepted(name, setting):
    space = build_space(setting[0])
    strategy = new_strategy(name, space, seed=0)
    batch = [first_proposal(strategy)] + [strategy.propose() for _ in range(4)]
    archs = [arch for arch, _ in batch]
    for arch in archs:
        assert space.validate(arch) == arch
    assert len(set(archs)) == len(archs), f"{name} repeats itself before any tell: {archs}"
    # tells in any order: shuffled, a failure, an infeasible result, a foreign architecture
    order = np.random.default_rng(1).permutation(len(batch))
    for k, i in enumerate(order):
        arch, fidelity = batch[i]
        values = None if k == 0 else (synthetic(space, arch),)
        strategy.tell(arch, values, feasible=k != 1, fidelity=fidelity)
    foreign = space.sample(np.random.default_rng(99))
    strategy.tell(foreign, synthetic(space, foreign))  # a bare number: a one-element vector
    good = {archs[i] for i in order[2:]} | {foreign}
    for _ in range(2):  # and it goes on proposing members of the space
        more = [strategy.propose() for _ in range(3)]
        for arch, _ in more:
            assert space.validate(arch) == arch
        for arch, fidelity in reversed(more):
            strategy.tell(arch, (synthetic(space, arch),), fidelity=fidelity)
            good.add(arch)
    best = strategy.best  # a failed or infeasible result is never the best
    assert best is not None and best.values is not None and best.feasible
    assert best.arch in good


@pytest.mark.parametrize("name", builtin("strategy"))
def test_eight_asks_after_a_warm_start_are_distinct_and_pending_until_told(name, nb201_csv):
    """The "Parallel asks" and "Pending proposals" contracts with a fitted model: after a warm
    start of 20 told cells (never proposed, so never pending) a batch of 8 asks before any
    tell is 8 distinct members, each pending until its tell."""
    table = load_nb201_table(nb201_csv)
    space, valid = table.space, table.column("cifar10_valid")
    strategy = new_strategy(name, space, seed=0)
    rng = np.random.default_rng(20)
    warm = list(dict.fromkeys(space.sample(rng) for _ in range(25)))[:20]
    for arch in warm:
        strategy.tell(arch, (float(valid[space.index(arch)]),))
    assert len(warm) == 20 and strategy.pending == []
    batch = [strategy.propose() for _ in range(8)]
    archs = [arch for arch, _ in batch]
    assert len(set(archs)) == 8, f"{name} repeats itself in a batch: {archs}"
    assert not set(archs) & set(warm), f"{name} proposes what it was told"
    for arch in archs:
        assert space.validate(arch) == arch
    assert strategy.pending == archs
    for arch, fidelity in reversed(batch):
        strategy.tell(arch, (float(valid[space.index(arch)]),), fidelity=fidelity)
    assert strategy.pending == []


@pytest.mark.parametrize("name", _params(builtin("strategy"), SLOW_STRATEGIES))
def test_same_seed_and_same_tells_give_the_same_proposals(name, setting):
    space = build_space(setting[0])
    first = drive(new_strategy(name, space, seed=3), space)
    again = drive(new_strategy(name, space, seed=3), space)
    assert first == again
    other = drive(new_strategy(name, space, seed=4), space)
    assert other != first, f"{name} ignores its seed"


@pytest.mark.parametrize("name", _params(builtin("strategy"), SLOW_STRATEGIES))
def test_options_rebuild_an_equal_behaving_strategy(name, setting):
    space = build_space(setting[0])
    strategy = new_strategy(name, space, seed=5)
    options = strategy.options()
    stored = json.loads(json.dumps(options))  # a study stores them as JSON
    rebuilt = make_strategy(name, space, seed=5, **stored)
    assert rebuilt.options() == options
    assert drive(rebuilt, space) == drive(strategy, space)


@pytest.mark.parametrize("name", builtin("strategy"))
def test_unknown_options_are_refused_with_an_archsearch_error(name):
    config = {
        "space": TINY_NB201,
        "strategy": {"name": name, **STRATEGY_OPTIONS.get(name, {}), "no_such_option": 1},
        "evaluator": nb201_evaluator_config(),
        "seed": 0,
    }
    with pytest.raises(ArchsearchError, match=f"strategy {name!r}"):
        build_components(config)


def study_config(name, setting, evaluations=STEPS):
    space, evaluator, constraint = setting
    return {
        "constraints": [constraint],
        "space": space,
        "strategy": {"name": name, **STRATEGY_OPTIONS.get(name, {})},
        "evaluator": evaluator,
        "seed": 2,
        "budget": {"evaluations": evaluations, "seconds": None},
    }


def finished_trials(study):
    return [
        (
            t.number,
            t.arch,
            t.status,
            t.feasible,
            t.fidelity,
            t.seed,
            t.values,
            t.asked_seq,
            t.told_seq,
        )
        for t in study.trials
    ]


@pytest.mark.parametrize("name", _params(builtin("strategy"), SLOW_STRATEGIES))
def test_a_study_stopped_and_reloaded_ends_like_an_uninterrupted_one(name, setting, tmp_path):
    config = study_config(name, setting)
    with warnings.catch_warnings():
        # Hyperband and BOHB warn that a table ignores fidelities, which is fine here; a
        # replay that diverges from the stored proposals is not
        warnings.filterwarnings("ignore", message=".*varies the fidelity")
        warnings.filterwarnings("error", message=".*replayed proposals differ")
        whole = Study.from_config(config, directory=tmp_path / "whole")
        whole.optimize()
        expected = finished_trials(whole)
        whole.close()
        part = Study.from_config(config, directory=tmp_path / "part")
        part.optimize(n_evaluations=5)
        assert part.n_finished == 5
        part.close()
        resumed = Study.load(tmp_path / "part")
        resumed.optimize()
        got = finished_trials(resumed)
        resumed.close()
    assert len(expected) == STEPS
    assert any(feasible is False for _, _, _, feasible, *_ in expected), "no infeasible trial"
    assert got == expected


def test_single_objective_strategies_refuse_two_objectives_and_random_search_accepts(
    small_table,
):
    multi = [n for n in builtin("strategy") if STRATEGIES.get(n).max_objectives != 1]
    assert "random" in multi
    setting = (table_space_config(small_table), table_evaluator_config(small_table), None)
    for name in builtin("strategy"):
        config = study_config(name, setting, evaluations=3)
        config["objectives"] = [
            {"name": "accuracy", "direction": "max"},
            {"name": "cost", "direction": "min"},
        ]
        config["reported"] = None
        config["constraints"] = []
        if name in multi:
            if name in SLOW_STRATEGIES:
                continue  # constructed, not run: a screening strategy could be slow
            study = Study.from_config(config)
            study.optimize()
            assert study.n_finished == 3, name
            continue
        with pytest.raises(ArchsearchError, match="multi-objective strategies") as info:
            Study.from_config(config)
        assert all(other in str(info.value) for other in multi), (name, str(info.value))


# ------------------------------------------------------------------ spaces
def space_cases(small_table: Path) -> dict[str, dict]:
    """A small configuration of every registered space (a new space needs one here)."""
    return {
        "nb201": {"name": "nb201", "channels": 4, "cells_per_stage": 1},
        "darts": {"name": "darts", "channels": 4, "layers": 3},
        "nasbench-graph": {"name": "nasbench-graph", "dataset": "cora"},
        "mobilenet": {
            "name": "mobilenet",
            "widths": [0.5, 1.0],
            "stages": [[8, 1], [16, 2]],
            "max_depth": 2,
            "kernels": [3, 5],
            "expansions": [3, 6],
        },
        "table": table_space_config(small_table),
        "define-by-run": {
            "name": "define-by-run",
            "factory": f"{toy_factory.__module__}:toy_factory",
            "input_shape": [1, 8, 8],
            "num_classes": 3,
        },
    }


@pytest.fixture(params=builtin("space"))
def space_config(request, small_table):
    cases = space_cases(small_table)
    if request.param not in cases:
        pytest.fail(f"space {request.param!r} has no case in tests/test_contracts.py::space_cases")
    return cases[request.param]


def samples(space, n=12, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_samples_mutants_and_neighbours_stay_in_the_space(space_config):
    space = build_space(space_config)
    archs = samples(space)
    assert archs == samples(space), "sampling ignores the generator's seed"
    rng = np.random.default_rng(1)
    for arch in archs:
        assert space.validate(arch) == arch and arch in space
        child = space.mutate(arch, rng)
        assert child in space and child != arch
        neighbours = space.neighbours(arch)
        assert neighbours and arch not in neighbours
        assert len(set(neighbours)) == len(neighbours)
        assert all(n in space for n in neighbours)


def test_json_and_string_round_trips_keep_every_decision(space_config):
    space = build_space(space_config)
    archs = list(dict.fromkeys(samples(space, 20)))
    strings = [space.to_string(a) for a in archs]
    assert len(set(strings)) == len(archs)
    for arch, text in zip(archs, strings, strict=True):
        stored = json.loads(json.dumps(space.to_json(arch)))
        assert space.from_json(stored) == arch
        assert space.from_string(text) == arch
        assert space.to_string(space.from_string(text)) == text


def test_size_counts_the_valid_architectures(space_config):
    space = build_space(space_config)
    size = space.size()
    assert isinstance(size, int) and size >= len(set(samples(space, 20)))
    if size <= 5_000:
        every = list(space.enumerate())
        assert len(every) == len(set(every)) == size
        assert set(samples(space, 20)) <= set(every)


def test_encodings_have_a_constant_length_and_onehot_tells_architectures_apart(space_config):
    space = build_space(space_config)
    archs = list(dict.fromkeys(samples(space, 20)))
    assert "onehot" in space.encodings
    for kind in space.encodings:
        codes = [np.asarray(space.encode(a, kind)) for a in archs]
        assert len({c.shape for c in codes}) == 1 and codes[0].ndim == 1, kind
        assert all(np.all(np.isfinite(c)) for c in codes), kind
    onehot = {space.encode(a, "onehot").tobytes() for a in archs}
    assert len(onehot) == len(archs)
    with pytest.raises(ArchsearchError):
        space.encode(archs[0], "no-such-encoding")


def test_config_rebuilds_an_equal_space_through_the_registry(space_config):
    space = build_space(space_config)
    config = space.config()
    assert config["name"] == space_config["name"]
    again = build_space(json.loads(json.dumps(config)))
    assert again.config() == config
    assert [(d.label, d.choices) for d in again.decisions] == [
        (d.label, d.choices) for d in space.decisions
    ]
    assert samples(again) == samples(space)


def test_a_bad_space_option_is_an_archsearch_error(space_config):
    with pytest.raises(ArchsearchError):
        build_space({**space_config, "no_such_option": 1})


# ------------------------------------------------------------------ evaluators
DIGITS_SEARCH = {"dataset": "digits", "valid_size": 64, "train_size": 64, "seed": 0}


def supernet_case(directory: Path):
    """An (untrained) NB201 supernet checkpoint on digits: the evaluator's contract does not
    depend on how well the supernet was trained."""
    import torch

    from archsearch.oneshot import build_supernet, save_supernet

    torch.manual_seed(0)
    net = build_supernet("nb201", (1, 8, 8), 10, channels=4, cells_per_stage=1)
    path = save_supernet(directory / "supernet.pt", net, DIGITS_SEARCH)
    config = {
        "name": "supernet", "checkpoint": str(path), "device": "cpu",
        "calibration_batches": 1, "eval_size": 32,
    }  # fmt: skip
    return config, {"name": "nb201", "channels": 4, "cells_per_stage": 1}


def evaluator_cases(directory: Path) -> dict:
    """name -> function giving (evaluator config, space config): a minimal evaluator of
    every registered name (a new evaluator needs one here)."""
    table = write_small_table(directory / "small.csv")
    return {
        "table": lambda: (table_evaluator_config(table), table_space_config(table)),
        "nb201-table": lambda: (nb201_evaluator_config(), TINY_NB201),
        "nasbench-graph-table": lambda: (
            {"name": "nasbench-graph-table", "dataset": "cora"},
            {"name": "nasbench-graph", "dataset": "cora"},
        ),
        "train": lambda: (
            {
                "name": "train",
                "dataset": "digits",
                "epochs": 1,
                "batch_size": 32,
                "train_size": 96,
                "valid_size": 48,
                "test_size": 48,
                "device": "cpu",
            },
            TINY_NB201,
        ),  # fmt: skip
        "supernet": lambda: supernet_case(directory),
        "proxy": lambda: ({"name": "proxy", "proxy": "params", **TINY_INPUTS}, TINY_NB201),
        "cost": lambda: ({"name": "cost", "input_shape": [3, 8, 8]}, TINY_NB201),
        "sleep": lambda: ({"name": "sleep", "seconds": 0.001}, TINY_NB201),
        "hardware": lambda: (
            {
                "name": "hardware",
                "input_shape": [3, 8, 8],
                "figures": ["latency_ms", "onnx_latency_ms", "peak_memory_mb"],
                "max_run_time": 0.05,
            },
            TINY_NB201,
        ),  # fmt: skip
        # the benchmark's own network: the table reports its costs, and the cost part must
        # agree with them (on a smaller network the two parts would clash on params)
        "composite": lambda: (
            {"name": "composite", "evaluators": [nb201_evaluator_config(), {"name": "cost"}]},
            {"name": "nb201"},
        ),
        "predictor": lambda: (
            {
                "name": "predictor",
                "train_table": str(NB201_CSV),
                "target": "cifar10_valid",
                "train_size": 60,
                "predictor": "lightgbm",
                "options": {"trees": 20},
            },
            TINY_NB201,
        ),  # fmt: skip
    }


SLOW_EVALUATORS = {"train", "supernet"}
#: contract violations found by these tests and not fixed yet: (test, evaluator) -> reason
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


@pytest.fixture(params=_params(builtin("evaluator"), SLOW_EVALUATORS))
def evaluator_case(request, tmp_path):
    cases = evaluator_cases(tmp_path)
    if request.param not in cases:
        pytest.fail(
            f"evaluator {request.param!r} has no case in tests/test_contracts.py::evaluator_cases"
        )
    config, space_config = cases[request.param]()
    return request.param, config, build_space(space_config)


def known_violation(test, name):
    reason = KNOWN_VIOLATIONS.get((test, name))
    if reason:
        pytest.xfail(reason)


def measured(values):
    """The values the determinism contract covers: not timings."""
    return {k: v for k, v in values.items() if not k.endswith(("_seconds", "_ms"))}


def test_evaluations_are_finite_named_values_deterministic_per_seed(evaluator_case):
    name, config, space = evaluator_case
    evaluator = build_evaluator(config)
    assert evaluator.name == name
    evaluator.check_space(space)
    arch = space.sample(np.random.default_rng(0))
    first = evaluator.evaluate(arch, space, seed=3).values
    assert first and all(isinstance(k, str) for k in first)
    assert all(isinstance(v, float) and math.isfinite(v) for v in first.values()), first
    assert evaluator.objective_name in first
    assert evaluator.objective_direction in ("min", "max")
    if evaluator.reported_name is not None:
        assert evaluator.reported_name in first
    second = evaluator.evaluate(arch, space, seed=3).values
    assert set(second) == set(first)
    known_violation("determinism", name)
    assert measured(second) == measured(first)


def test_config_rebuilds_an_evaluator_that_gives_the_same_values(evaluator_case):
    name, config, space = evaluator_case
    evaluator = build_evaluator(config)
    stored = evaluator.config()
    assert stored["name"] == name
    again = build_evaluator(json.loads(json.dumps(stored)))
    assert again.config() == stored
    assert again.objective_name == evaluator.objective_name
    assert again.reported_name == evaluator.reported_name
    arch = space.sample(np.random.default_rng(1))
    here = evaluator.evaluate(arch, space, seed=0).values
    there = again.evaluate(arch, space, seed=0).values
    known_violation("determinism", name)
    assert measured(there) == measured(here)


def test_time_limit_and_fidelity_keywords_are_accepted(evaluator_case):
    name, config, space = evaluator_case
    evaluator = build_evaluator(config)
    arch = space.sample(np.random.default_rng(2))
    plenty = evaluator.evaluate(arch, space, seed=1, time_limit=1e6).values
    assert evaluator.objective_name in plenty
    if not evaluator.supports_fidelity:  # ignored, so the same values
        ignored = evaluator.evaluate(arch, space, seed=1, fidelity=1, time_limit=1e6).values
        known_violation("determinism", name)
        assert measured(ignored) == measured(plenty)


def test_cheap_values_are_what_evaluating_reports(evaluator_case):
    """A study checks hard constraints on them before evaluating: they must not differ."""
    name, config, space = evaluator_case
    evaluator = build_evaluator(config)
    evaluator.check_space(space)
    arch = space.sample(np.random.default_rng(3))
    cheap = dict(evaluator.cheap_values(arch, space))
    values = evaluator.evaluate(arch, space, seed=5).values
    assert {k: values.get(k) for k in cheap} == cheap
    assert all(isinstance(v, float) for v in cheap.values())
    names = evaluator.value_names(space)
    assert names is None or set(cheap) <= names


def test_a_bad_evaluator_option_is_an_archsearch_error(evaluator_case):
    _, config, _ = evaluator_case
    with pytest.raises(ArchsearchError):
        build_evaluator({**config, "no_such_option": 1})
