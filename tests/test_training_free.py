"""Training-free search: the ``proxy`` evaluator, the study's screening step (NASWOT search and
the proxy warm start as its special cases) and TE-NAS pruning.

Networks are kept tiny (C=2, N=1, 8x8 inputs) so that the file runs in seconds; the
full-size comparison with the papers is benchmarks/training_free.py.
"""

import ast
import json
import shutil
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import archsearch.evaluate.proxy as proxy_module
import archsearch.study.screening as screening_module
from archsearch.cli.main import main
from archsearch.errors import ArchsearchError
from archsearch.evaluate.proxy import ProxyData, ProxyEvaluator, score_architectures
from archsearch.oneshot import tenas as tenas_module
from archsearch.oneshot.tenas import TENASResult, _dense_ranks, tenas_prune
from archsearch.space import NB201Space
from archsearch.space.nb201 import EDGES, OPERATIONS, edge_label
from archsearch.study import SQLiteStorage, Study, TrialRecord
from archsearch.study.screening import distinct_sample, expand_aliases, rank_sample

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data": "gaussian", "input_shape": [3, 8, 8]}
TINY_SOURCE = ProxyData(input_shape=(3, 8, 8))
TINY_SPACE = {"name": "nb201", "channels": 2, "cells_per_stage": 1}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks run fastest on one thread; on a busy machine, threads only contend."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_space() -> NB201Space:
    return NB201Space(channels=2, cells_per_stage=1)


def table_config(nb201_csv, strategy, screen=None, seed=5, budget=8):
    config = {
        "space": TINY_SPACE,
        "strategy": strategy,
        "evaluator": {"name": "nb201-table", "table": str(nb201_csv), "dataset": "cifar10"},
        "seed": seed,
        "budget": {"evaluations": budget, "seconds": None},
    }
    if screen is not None:
        config["screen"] = screen
    return config


def screen_section(proxy="params", sample_size=20, top_k=4):
    return {"evaluator": {"name": "proxy", "proxy": proxy, **TINY}, "sample_size": sample_size,
            "top_k": top_k}  # fmt: skip


# ------------------------------------------------------------------ imports
def test_importing_the_strategies_imports_neither_torch_nor_proxies_nor_data():
    code = (
        "import archsearch.strategy, sys; bad = [m for m in ('torch', 'archsearch.proxies', "
        "'archsearch.data') if m in sys.modules]; assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("module", [proxy_module, screening_module])
def test_the_proxy_evaluator_and_the_screening_import_torch_only_inside_functions(module):
    tree = ast.parse(Path(module.__file__).read_text())
    top_level = [
        alias.name if isinstance(node, ast.Import) else node.module
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    forbidden = ("torch", "archsearch.proxies", "archsearch.data", "archsearch.oneshot")
    assert not [m for m in top_level if m.startswith(forbidden)]


def test_training_free_strategies_are_gone_from_the_strategy_package():
    assert not (ROOT / "archsearch" / "strategy" / "training_free.py").exists()


# ------------------------------------------------------------------ the proxy evaluator
def test_the_proxy_evaluator_reports_the_score_and_its_seconds_deterministically():
    space = tiny_space()
    arch = space.sample(np.random.default_rng(0))
    evaluator = ProxyEvaluator("naswot", **TINY)
    assert evaluator.objective_name == "naswot"
    result = evaluator.evaluate(arch, space, seed=3)
    assert set(result.values) == {"naswot", "proxy_seconds"} and result.values["proxy_seconds"] > 0
    assert evaluator.evaluate(arch, space, seed=3).values["naswot"] == result.values["naswot"]
    scores, _ = score_architectures(space, [arch], ["naswot"], TINY_SOURCE, 3)
    assert result.values["naswot"] == scores["naswot"][0]


def test_evaluate_many_scores_like_one_at_a_time():
    space = tiny_space()
    archs = distinct_sample(space, 0, 4)
    evaluator = ProxyEvaluator("synflow", **TINY)
    many = [r.values["synflow"] for r in evaluator.evaluate_many(archs, space, seed=1)]
    one = [evaluator.evaluate(a, space, seed=1).values["synflow"] for a in archs]
    assert many == one


def test_a_combination_reports_each_proxy_and_their_rank_average_in_a_population():
    space = tiny_space()
    archs = distinct_sample(space, 0, 6)
    evaluator = ProxyEvaluator(["params", "synflow"], **TINY)
    assert evaluator.objective_name == "combined"
    results = evaluator.evaluate_many(archs, space, seed=0)
    assert set(results[0].values) == {"params", "synflow", "combined", "proxy_seconds"}
    combined = [r.values["combined"] for r in results]
    assert min(combined) > 0 and max(combined) <= 1  # mean normalised ranks
    weighted = ProxyEvaluator(["params", "synflow"], weights={"params": 1.0, "synflow": 0.0})
    ranks = [r.values["combined"] for r in weighted.evaluate_many(archs, space, seed=0)]
    params = [r.values["params"] for r in results]
    assert np.argsort(ranks).tolist() == np.argsort(params, kind="stable").tolist()


def test_the_proxy_evaluator_refuses_unknown_proxies_before_any_work():
    with pytest.raises(ArchsearchError):
        ProxyEvaluator("no-such-proxy").check_space(tiny_space())


def test_a_batch_size_beyond_the_proxys_default_scores_every_row():
    space = tiny_space()
    arch = space.sample(np.random.default_rng(0))
    big = ProxyEvaluator("naswot", batch_size=48, input_shape=[3, 8, 8])
    default = ProxyEvaluator("naswot", input_shape=[3, 8, 8])
    # naswot's log-determinant grows with the batch: 48 rows score above the default 32
    assert (
        big.evaluate(arch, space).values["naswot"] > default.evaluate(arch, space).values["naswot"]
    )


def test_a_study_can_search_with_the_proxy_evaluator(nb201_csv):
    config = table_config(nb201_csv, {"name": "random"}, budget=3)
    config["evaluator"] = {"name": "proxy", "proxy": "params", **TINY}
    study = Study.from_config(config)
    study.optimize()
    assert study.n_finished == 3 and study.declaration.primary.name == "params"


# ------------------------------------------------------------------ screening
def test_screening_evaluates_the_proxys_top_k_first_then_the_strategy(nb201_csv):
    config = table_config(nb201_csv, {"name": "evolution"}, screen_section(top_k=4), budget=10)
    study = Study.from_config(config)
    study.optimize()
    trials = study.trials
    space = study.space
    # rank the same seeded sample independently: the first four trials are its top four
    sample = distinct_sample(space, 5, 20)
    params = [r.values["params"] for r in ProxyEvaluator("params", **TINY).evaluate_many(
        sample, space, seed=5)]  # fmt: skip
    order = np.argsort(-np.asarray(params), kind="stable")
    top = [space.to_string(sample[i]) for i in order[:4]]
    assert [t.arch for t in trials[:4]] == top
    assert [t.origin for t in trials] == ["screen"] * 4 + ["strategy"] * 6
    # random sampling would not do this: the screened have the sample's largest scores
    screened = {space.to_string(sample[i]) for i in order[:4]}
    rest = [p for a, p in zip(sample, params, strict=True) if space.to_string(a) not in screened]
    assert min(params[i] for i in order[:4]) >= max(rest)
    assert len({t.arch for t in trials}) == 10  # the strategy never repeats a screened one
    assert len(study.strategy.population) == 10  # evolution was told the screened results
    summary = study.summary()["screen"]
    assert summary["ranked"] == 20 and summary["top_k"] == 4 and summary["evaluated"] == 4
    assert summary["seconds"] > 0 and study.elapsed >= summary["seconds"]
    stored = study.storage.get_meta("screen_ranking")
    assert [space.to_string(space.from_json(a)) for a in stored["archs"][:4]] == top


def test_nan_scores_rank_last_and_ties_keep_the_sampling_order():
    class Fake:
        objective_name = "score"

        def evaluate_many(self, archs, space, *, seed=0):
            from archsearch.evaluate.base import EvalResult

            values = [1.0, float("nan"), 2.0, 1.0, float("-inf")]
            return [EvalResult({"score": v}) for v in values[: len(archs)]]

    sample = distinct_sample(tiny_space(), 0, 5)
    ranked = [sample.index(a) for a, _ in rank_sample(Fake(), tiny_space(), sample, 0)]
    assert ranked == [2, 0, 3, 1, 4]


@pytest.mark.slow
def test_a_study_resumed_halfway_through_its_screening_ends_with_identical_trials(
    nb201_csv, tmp_path
):
    config = table_config(nb201_csv, {"name": "evolution"}, screen_section(top_k=6), budget=10)
    whole = Study.from_config(config)
    whole.optimize()
    half = Study.from_config(config, directory=tmp_path / "study")
    half.optimize(n_evaluations=3)
    half.close()
    db = sqlite3.connect(tmp_path / "study" / "study.db")
    assert [r[0] for r in db.execute("SELECT origin FROM trials ORDER BY number")] == ["screen"] * 3
    db.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a replay that diverges from the stored trials warns
        resumed = Study.load(tmp_path / "study", run=True)
    resumed.optimize()
    assert [(t.arch, t.origin) for t in resumed.trials] == [
        (t.arch, t.origin) for t in whole.trials
    ]
    resumed.close()


def test_a_resume_reuses_the_stored_ranking_instead_of_scoring_again(
    nb201_csv, tmp_path, monkeypatch
):
    config = table_config(nb201_csv, {"name": "random"}, screen_section(top_k=3), budget=5)
    first = Study.from_config(config, directory=tmp_path / "s")
    first.optimize(n_evaluations=2)
    first.close()

    def refuse(*args, **kwargs):
        raise AssertionError("the ranking was recomputed")

    monkeypatch.setattr(screening_module.Screening, "rank", refuse)
    resumed = Study.load(tmp_path / "s", run=True)
    resumed.optimize()
    assert [t.origin for t in resumed.trials] == ["screen"] * 3 + ["strategy"] * 2
    resumed.close()


def test_the_screen_section_is_validated_before_anything_is_written(nb201_csv, tmp_path):
    bad = table_config(nb201_csv, {"name": "random"}, screen_section(sample_size=3, top_k=4))
    with pytest.raises(ArchsearchError, match="top_k"):
        Study.from_config(bad, directory=tmp_path / "s")
    unknown = table_config(nb201_csv, {"name": "random"}, {**screen_section(), "sample": 3})
    with pytest.raises(ArchsearchError, match="unknown key"):
        Study.from_config(unknown, directory=tmp_path / "s")
    assert not (tmp_path / "s" / "study.db").exists()


# ------------------------------------------------------------------ the strategy aliases
def test_naswot_is_random_search_after_screening_its_whole_sample():
    expanded = expand_aliases({"strategy": {"name": "naswot", "sample_size": 6, **TINY}})
    assert expanded["strategy"] == {"name": "random"}
    assert expanded["screen"]["top_k"] == expanded["screen"]["sample_size"] == 6
    assert expanded["screen"]["evaluator"]["proxy"] == "naswot"
    with pytest.raises(ArchsearchError, match="unknown option"):
        expand_aliases({"strategy": {"name": "naswot", "top_k": 3}})
    warm = expand_aliases({"strategy": {"name": "warmstart", "inner": "local", "top_k": 2,
                                        "inner_options": {"tries": 5}}})  # fmt: skip
    assert warm["strategy"] == {"name": "local", "tries": 5} and warm["screen"]["top_k"] == 2


def test_naswot_first_evaluates_the_best_scoring_architecture_of_its_sample(nb201_csv):
    strategy = {"name": "naswot", "sample_size": 6, **TINY}
    study = Study.from_config(table_config(nb201_csv, strategy, seed=3, budget=8))
    study.optimize()
    space = study.space
    sample = distinct_sample(space, 3, 6)
    scores, _ = score_architectures(space, sample, ["naswot"], TINY_SOURCE, 3)
    order = np.argsort(-scores["naswot"], kind="stable")
    assert study.trials[0].arch == space.to_string(sample[int(np.argmax(scores["naswot"]))])
    assert [t.arch for t in study.trials[:6]] == [space.to_string(sample[i]) for i in order]
    assert study.config["strategy"] == {"name": "random"}  # stored in the new form


@pytest.mark.slow
def test_a_resumed_warm_start_study_replays_to_the_same_proposals(nb201_csv, tmp_path):
    strategy = {"name": "warmstart", "inner": "evolution", "proxy": "params",
                "sample_size": 20, "top_k": 3, **TINY}  # fmt: skip
    config = table_config(nb201_csv, strategy)
    whole = Study.from_config(config)
    whole.optimize()
    half = Study.from_config(config, directory=tmp_path / "study")
    half.optimize(n_evaluations=4)
    half.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = Study.load(tmp_path / "study")
    resumed.optimize()
    assert [t.arch for t in resumed.trials] == [t.arch for t in whole.trials]
    resumed.close()
    # the same command again finds the same (translated) study and resumes it
    again = Study.from_config(config, directory=tmp_path / "study")
    assert again.n_finished == 8
    again.close()


def test_the_cli_screens_with_a_proxy_and_reports_it(nb201_csv, tmp_path, capsys):
    argv = [
        "search", "--space", "nb201", "--space-opt", "channels=2", "--space-opt",
        "cells_per_stage=1", "--strategy", "local", "--evaluator", "nb201-table", "--table",
        str(nb201_csv), "--dataset", "cifar10", "--budget", "5", "--out", str(tmp_path / "s"),
        "--screen", "params", "--screen-sample", "12", "--screen-top-k", "3",
        "--screen-opt", "input_shape=[3,8,8]", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["screen"]["evaluated"] == 3 and summary["screen"]["ranked"] == 12
    assert summary["config"]["screen"]["evaluator"]["proxy"] == "params"
    assert main(["show", str(tmp_path / "s")]) == 0
    assert "screened   top 3 of 12 by proxy params" in capsys.readouterr().out
    shutil.rmtree(tmp_path / "s")
    naswot = argv[:8] + ["naswot", "--strategy-opt", "sample_size=4", "--strategy-opt",
                         "input_shape=[3,8,8]"] + argv[9:19] + ["--json"]  # fmt: skip
    assert main(naswot) == 0
    assert json.loads(capsys.readouterr().out)["screen"]["evaluated"] == 4


# ------------------------------------------------------------------ storage
def test_the_origin_of_each_trial_is_stored(tmp_path):
    storage = SQLiteStorage.create(tmp_path / "study.db")
    for number, origin in enumerate(["screen", "strategy"]):
        storage.add_trial(TrialRecord(number, f"a{number}", {}, "running", 0, number, 0.0,
                                      origin=origin))  # fmt: skip
    storage.close()
    assert [t.origin for t in SQLiteStorage(tmp_path / "study.db").trials()] == [
        "screen",
        "strategy",
    ]


def test_a_v2_file_without_the_origin_column_reads_as_strategy_and_gains_it(tmp_path):
    path = tmp_path / "study.db"
    storage = SQLiteStorage.create(path)
    storage.add_trial(TrialRecord(0, "a", {}, "running", 0, 0, 0.0))
    storage.close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE trials DROP COLUMN origin")
    db.commit()
    db.close()
    reopened = SQLiteStorage(path, writable=True)
    assert reopened.trials()[0].origin == "strategy"
    reopened.add_trial(TrialRecord(1, "b", {}, "running", 0, 1, 0.0, origin="screen"))
    reopened.close()
    assert [t.origin for t in SQLiteStorage(path).trials()] == ["strategy", "screen"]


# ------------------------------------------------------------------ TE-NAS
def test_dense_ranks_share_ranks_on_ties_as_tenas_does():
    assert _dense_ranks([0.3, 0.1, 0.3, 0.2], descending=True) == [0, 2, 0, 1]
    assert _dense_ranks([0.3, 0.1, 0.3, 0.2], descending=False) == [2, 0, 2, 1]


@pytest.mark.slow
def test_tenas_prunes_one_operation_per_edge_per_round_down_to_one():
    space = NB201Space()
    result = tenas_prune(
        space, seed=0, repeat=1, batch_size=4, region_samples=64, input_shape=[3, 8, 8]
    )
    assert space.make(dict(result.arch)) == result.arch
    # none goes first, then 4 -> 1 operations per edge: three rounds of six prunes
    assert len(result.rounds) == 3
    for pruned in result.rounds:
        assert sorted(label for label, _ in pruned) == sorted(edge_label(*e) for e in EDGES)
    for label in (edge_label(*e) for e in EDGES):
        removed = [op for pruned in result.rounds for lab, op in pruned if lab == label]
        assert sorted([*removed, result.arch[label]]) == sorted(OPERATIONS[1:])


def test_tenas_keeps_the_operation_whose_removal_hurts_both_measures_most(monkeypatch):
    """Algorithm 1 by hand: removing conv3x3 raises the condition number most and loses the
    most regions, removing skip lowers it most and loses none, so conv3x3 survives every
    edge and skip is pruned first."""
    effect = {"skip_connect": (0.5, -0.1), "avg_pool_3x3": (0.2, 0.0),
              "nor_conv_1x1": (0.0, 0.1), "nor_conv_3x3": (-0.5, 0.3)}  # fmt: skip

    def fake_measures(ntk_net, region_net, alive, candidates, *args):
        dk = {c: effect[OPERATIONS[c[1]]][0] for c in candidates}
        dr = {c: effect[OPERATIONS[c[1]]][1] for c in candidates}
        return dk, dr

    import archsearch.oneshot.tenas_supernet as supernet

    monkeypatch.setattr(supernet, "prune_measures", fake_measures)
    result = tenas_prune(NB201Space(), repeat=1, batch_size=2, input_shape=[3, 8, 8])
    assert set(result.arch.values()) == {"nor_conv_3x3"}
    assert {op for _, op in result.rounds[0]} == {"skip_connect"}


def test_the_tenas_alias_evaluates_the_pruned_cell_first_then_searches(nb201_csv, monkeypatch):
    pruned = NB201Space().from_index(123)
    calls = []

    def fake_prune(space, **options):
        calls.append(options)
        return TENASResult(arch=pruned)

    monkeypatch.setattr(tenas_module, "tenas_prune", fake_prune)
    config = table_config(nb201_csv, {"name": "tenas", "repeat": 1}, budget=5)
    config["space"] = {"name": "nb201"}
    study = Study.from_config(config)
    study.optimize()
    assert calls == [{"seed": 5, "repeat": 1}]
    assert study.trials[0].arch == NB201Space().to_string(pruned)
    assert [t.origin for t in study.trials] == ["screen"] + ["strategy"] * 4
    assert len({t.arch for t in study.trials}) == 5
    with pytest.raises(ArchsearchError, match="unknown TE-NAS option"):
        Study.from_config(table_config(nb201_csv, {"name": "tenas", "repeats": 1}))
