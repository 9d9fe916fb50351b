"""A one-shot search is a study: ``archsearch oneshot --out DIR`` writes a study directory
that ``show``, ``resume`` and ``export`` handle like any other, and an interrupted run
resumes to the result of an uninterrupted one."""

import json
import sqlite3

import pytest
import torch

from archsearch.cli import oneshot as oneshot_cli
from archsearch.cli.main import main
from archsearch.export import METADATA_KEYS, load_metadata
from archsearch.oneshot import ONESHOT, SupernetEvaluator, build_supernet, load_search_data
from archsearch.oneshot.data import recipe
from archsearch.oneshot.run import EPOCHS, TRAINING, method_from_config, study_config
from archsearch.study import Study
from archsearch.study.storage import SQLiteStorage

TINY = [
    "--dataset", "digits", "--train-size", "128", "--valid-size", "128", "--epochs", "1",
    "--batch-size", "32", "--device", "cpu", "--space-opt", "channels=4",
    "--space-opt", "cells_per_stage=1",
]  # fmt: skip
GDAS = ["--method", "gdas", "--arch-lr", "0.003"]
SPOS = ["--method", "spos", "--search-budget", "6", "--method-opt",
        'strategy_options={"population_size": 3, "sample_size": 2}']  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def oneshot(out, *argv) -> int:
    return main(["oneshot", *TINY, *argv, "--out", str(out), "--quiet"])


def trials(directory):
    study = Study.load(directory)
    try:
        return [(t.number, t.arch, t.status, t.objective, t.origin) for t in study.trials]
    finally:
        study.close()


@pytest.fixture(scope="module")
def gdas_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("gdas") / "study"
    assert oneshot(out, *GDAS) == 0
    return out


@pytest.fixture(scope="module")
def spos_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("spos") / "study"
    assert oneshot(out, *SPOS) == 0
    return out


def test_the_derived_architecture_is_the_best_trial_of_a_stored_study(gdas_study, capsys):
    summary = json.loads((gdas_study / "oneshot.json").read_text())
    assert {p.name for p in gdas_study.iterdir()} >= {"study.db", "supernet.pt", "oneshot.json"}
    assert SQLiteStorage(gdas_study / "study.db").version == 2
    capsys.readouterr()
    assert main(["show", str(gdas_study), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    best = shown["best"]
    assert best["arch"] == summary["arch"] and best["origin"] == "oneshot"
    assert best["values"]["inherited_valid_accuracy"] == best["objective"]
    assert shown["config"]["oneshot"]["name"] == "gdas"
    assert shown["config"]["evaluator"]["checkpoint"] == str((gdas_study / "supernet.pt").resolve())
    assert shown["oneshot"]["training"]["complete"] is True
    assert shown["oneshot"]["epochs"] == summary["history"]  # the per-epoch diagnostics
    assert main(["show", str(gdas_study)]) == 0
    text = capsys.readouterr().out
    assert "one-shot   gdas: training complete" in text and "epoch 1: train_loss" in text


@pytest.mark.slow
def test_a_oneshot_study_exports_through_export_study(gdas_study, tmp_path, capsys):
    model = tmp_path / "m.pt2"
    argv = ["export", str(gdas_study), "--to", str(model), "--epochs", "1", "--train-size", "128"]
    assert main([*argv, "--json"]) == 0  # the dataset defaults to the supernet's
    metadata = load_metadata(model)
    assert tuple(metadata) == METADATA_KEYS
    assert metadata["method"] == "gdas" and metadata["dataset"] == "digits"
    assert metadata["arch"] == json.loads(capsys.readouterr().out)["arch"]
    assert metadata["objective"] == "inherited_valid_accuracy"
    logits = torch.export.load(str(model)).module()(torch.rand(3, 1, 8, 8))
    assert logits.shape == (3, 10)
    assert main(["export", str(gdas_study), "--to", str(tmp_path / "n.pt2")]) == 2
    assert "name the data and recipe" in capsys.readouterr().err


def test_spos_searches_as_the_study_and_gives_the_in_memory_figures(spos_study):
    stored = trials(spos_study)
    assert len(stored) == 6 and {t[4] for t in stored} == {"strategy"}
    summary = json.loads((spos_study / "oneshot.json").read_text())
    data = load_search_data(**recipe("digits", None, 128, 128, 0))
    torch.manual_seed(0)
    net = build_supernet("nb201", data.input_shape, data.num_classes, channels=4,
                         cells_per_stage=1)  # fmt: skip
    options = {"population_size": 3, "sample_size": 2}
    method = ONESHOT.get("spos")(epochs=1, batch_size=32, device="cpu", search_budget=6,
                                 strategy_options=options)  # fmt: skip
    result = method.search(net, data)
    assert summary["arch"] == result.arch_string
    assert summary["details"]["trajectory"] == result.details["trajectory"]
    assert summary["history"][0]["train_loss"] == result.history[0]["train_loss"]


def test_an_interrupted_search_phase_resumes_to_the_uninterrupted_trials(
    spos_study, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "study"
    calls = []
    evaluate = SupernetEvaluator.evaluate

    def stop_after_three(self, *args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(SupernetEvaluator, "evaluate", stop_after_three)
    assert oneshot(out, *SPOS) == 130
    assert "archsearch resume" in capsys.readouterr().err
    monkeypatch.setattr(SupernetEvaluator, "evaluate", evaluate)
    done = trials(out)
    assert [t[2] for t in done] == ["complete"] * 3 + ["running"]
    assert main(["resume", str(out), "--quiet"]) == 0
    assert "training it again" not in capsys.readouterr().out  # the supernet was complete
    assert trials(out) == trials(spos_study)
    assert main(["resume", str(out), "--json"]) == 0  # spent: nothing more to do
    assert json.loads(capsys.readouterr().out)["n_evaluations"] == 6


def test_interrupted_training_is_trained_again_to_the_same_result(
    gdas_study, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "study"

    def interrupt(record):
        raise KeyboardInterrupt

    monkeypatch.setattr(oneshot_cli, "_print_epoch", interrupt)
    assert main(["oneshot", *TINY, *GDAS, "--out", str(out)]) == 130
    storage = SQLiteStorage(out / "study.db")
    assert storage.get_meta(TRAINING) is None and len(storage.get_meta(EPOCHS)) == 1
    assert not (out / "supernet.pt").exists() and trials(out) == []
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["resume", str(out), "--quiet"]) == 0
    assert "training it again" in capsys.readouterr().out
    assert trials(out)[0][1:] == trials(gdas_study)[0][1:]
    again = json.loads((out / "oneshot.json").read_text())
    first = json.loads((gdas_study / "oneshot.json").read_text())
    assert again["arch"] == first["arch"]
    assert again["history"][0]["train_loss"] == first["history"][0]["train_loss"]


def test_the_same_command_on_its_own_study_continues_it_and_another_is_refused(gdas_study, capsys):
    before = (gdas_study / "study.db").read_bytes()
    capsys.readouterr()
    assert oneshot(gdas_study, *GDAS, "--seed", "1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a different study" in err
    assert (gdas_study / "study.db").read_bytes() == before
    assert oneshot(gdas_study, *GDAS) == 0  # the same study: complete, nothing retrained
    assert trials(gdas_study)[0][4] == "oneshot" and len(trials(gdas_study)) == 1


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("darts", {"order": 2, "selection": "perturbation"}),
        ("gdas", {"tau_max": 5.0}),
        ("enas", {"final_samples": 3}),
        ("spos", {"sampling": "fair", "few_shot_epochs": 1}),
        ("rsps", {"search_budget": 3}),
    ],
)
def test_the_stored_configuration_rebuilds_the_same_method(tmp_path, name, options):
    method = ONESHOT.get(name)(epochs=2, device="cpu", **options)
    space = build_supernet("nb201", (1, 8, 8), 10, channels=4, cells_per_stage=1).space
    config = study_config(method, space, {"channels": 4}, {"dataset": "digits"}, tmp_path)
    json.dumps(config, allow_nan=False)
    rebuilt = method_from_config(config["oneshot"])
    assert type(rebuilt) is type(method) and rebuilt.options() == method.options()
    assert config["strategy"]["name"] == ("derived" if name in ("darts", "gdas", "enas") else
                                          rebuilt.strategy)  # fmt: skip


def test_a_v2_file_without_origins_reads_them_as_strategy_and_gains_the_column(
    spos_study, tmp_path
):
    import shutil

    out = tmp_path / "old"
    shutil.copytree(spos_study, out)
    db = sqlite3.connect(out / "study.db")
    db.execute("ALTER TABLE trials DROP COLUMN origin")
    db.execute("DELETE FROM trials WHERE number >= 4")
    db.commit()
    db.close()
    assert {t[4] for t in trials(out)} == {"strategy"}
    study = Study.load(out, run=True)
    study.optimize()
    study.close()
    columns = {row[1] for row in sqlite3.connect(out / "study.db").execute(
        "PRAGMA table_info(trials)")}  # fmt: skip
    assert "origin" in columns and trials(out) == trials(spos_study)
