"""Exported models run in plain PyTorch, with archsearch impossible to import."""

import json
import subprocess
import sys

import pytest
import torch

from archsearch.cli.main import main
from archsearch.export import load_metadata
from archsearch.study import Study

TINY = ["--space-opt", "channels=4", "--space-opt", "cells_per_stage=1"]

PLAIN = r"""
import sys
sys.modules["archsearch"] = None  # importing archsearch now fails
import torch
model = torch.export.load(sys.argv[1]).module()
x, y = torch.load(sys.argv[2])
with torch.no_grad():
    print((model(x).argmax(1) == y).float().mean().item() * 100)
"""


def raw_test_set(data):
    """The test images as raw pixels, undoing the dataset's normalisation."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return data.x_test * std + mean, data.y_test


def accuracy_in_plain_torch(model_path, data, tmp_path):
    tensors = tmp_path / "test_set.pt"
    torch.save(raw_test_set(data), tensors)
    done = subprocess.run(
        [sys.executable, "-c", PLAIN, str(model_path), str(tensors)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(done.stdout.strip())


@pytest.fixture(scope="module")
def trained_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "study"
    argv = [
        "search", "--space", "nb201", *TINY, "--strategy", "random", "--evaluator", "train",
        "--dataset", "digits", "--epochs", "2", "--budget", "3", "--seed", "1", "--out", str(out),
        "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    return out


@pytest.mark.slow
def test_exported_winner_keeps_its_accuracy_in_plain_torch(trained_study, tmp_path, capsys):
    model_path = tmp_path / "model.pt2"
    assert main(["export", str(trained_study), "--to", str(model_path), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    study = Study.load(trained_study)
    assert exported["arch"] == study.best.arch
    accuracy = accuracy_in_plain_torch(model_path, study.evaluator.data, tmp_path)
    assert accuracy == pytest.approx(study.best.reported, abs=1e-3)
    assert load_metadata(model_path)["test_accuracy"] == study.best.reported


@pytest.mark.slow
def test_a_table_study_needs_a_recipe_and_then_trains_the_winner(tmp_path, capsys, nb201_csv):
    out = tmp_path / "table"
    argv = [
        "search", "--evaluator", "nb201-table", "--table", str(nb201_csv), "--budget", "10",
        "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["export", str(out), "--to", str(tmp_path / "m.pt2")]) == 2
    assert "name the data and recipe" in capsys.readouterr().err
    argv = ["export", str(out), "--to", str(tmp_path / "m.pt2"), "--dataset", "digits"]
    assert main([*argv, "--epochs", "4", *TINY, "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["dataset"] == "digits" and exported["test_accuracy"] > 50
    assert exported["space"]["channels"] == 4


@pytest.mark.slow
def test_pick_exports_another_front_member_retrained_to_the_same_network(tmp_path, capsys):
    out = tmp_path / "mo"
    argv = [
        "search", "--space", "nb201", *TINY, "--strategy", "random", "--evaluator", "train",
        "--dataset", "digits", "--epochs", "1", "--budget", "6", "--seed", "2", "--out", str(out),
        "--objective", "valid_accuracy:max", "--objective", "params:min", "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    study = Study.load(out)
    front = study.pareto_front()
    assert len(front) >= 2, "six random cells give a front of at least two members"
    smallest = min(front, key=lambda t: t.values["params"])
    model_path = tmp_path / "small.pt2"
    pick = f"params<={smallest.values['params']:.0f}"
    capsys.readouterr()
    assert main(["export", str(out), "--to", str(model_path), "--pick", pick, "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["arch"] == smallest.arch != study.best.arch
    assert exported["test_accuracy"] == pytest.approx(smallest.reported, abs=1e-6)
    assert main(["export", str(out), "--to", str(model_path), "--pick", "params<=1"]) == 2
    assert "no front member of the study meets params<=1" in capsys.readouterr().err
