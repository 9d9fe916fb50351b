"""Objectives and constraints from the command line: --objective NAME[:max|min] (repeatable)
and --constraint 'NAME<=VALUE'; misspelt names and mismatched strategies are refused before
anything is written."""

import csv
import itertools
import json

import pytest

from archsearch.cli.main import main


@pytest.fixture
def table(tmp_path):
    """A two-metric CSV over a 3 x 4 grid: accuracy grows with width, so does the loss."""
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["depth", "width", "acc", "loss"])
        for depth, width in itertools.product([1, 2, 3], [8, 16, 32, 64]):
            writer.writerow([depth, width, 50 + width / 2 + depth, width / 8 + depth])
    return path


def run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_two_objective_search_over_any_csv(tmp_path, table, capsys):
    out = tmp_path / "s"
    args = ["search", "--evaluator", "table", "--table", str(table), "--strategy", "random"]
    args += ["--objective", "acc:max", "--objective", "loss:min", "--budget", "12"]
    code, _, _ = run([*args, "--out", str(out), "--json"], capsys)
    assert code == 0
    code, shown, _ = run(["show", str(out), "--json"], capsys)
    summary = json.loads(shown)
    assert summary["objectives"] == [
        {"name": "acc", "direction": "max"},
        {"name": "loss", "direction": "min"},
    ]
    assert summary["n_evaluations"] == 12 and summary["best"]["values"]["loss"] > 0


def test_a_constraint_keeps_the_best_feasible(tmp_path, table, capsys):
    out = tmp_path / "c"
    args = ["search", "--evaluator", "table", "--table", str(table), "--strategy", "evolution"]
    args += ["--objective", "acc", "--constraint", "loss<=3", "--budget", "12", "--json"]
    code, printed, _ = run([*args, "--out", str(out)], capsys)
    summary = json.loads(printed)
    assert code == 0 and summary["best"]["values"]["loss"] <= 3
    assert summary["n_infeasible"] > 0  # 12 of 12 rows are searched, some break the bound


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--objective", "accuracy"], "no column 'accuracy'"),
        (["--objective", "acc", "--constraint", "latency<=3"], "no column 'latency'"),
        (
            ["--objective", "acc", "--objective", "loss:min"],
            "multi-objective strategies: mo-evolution, mo-predictor, nsga2, random",
        ),
        (["--objective", "acc:up"], "direction must be max or min"),
        (["--objective", "acc", "--constraint", "loss<3"], "NAME<=VALUE"),
    ],
)
def test_bad_declarations_are_one_line_and_write_nothing(tmp_path, table, capsys, flags, message):
    out = tmp_path / "bad"
    args = ["search", "--evaluator", "table", "--table", str(table), "--strategy", "evolution"]
    code, _, err = run([*args, *flags, "--budget", "5", "--out", str(out)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert not out.exists()
