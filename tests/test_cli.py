"""The command line, run in-process through ``main(argv)``."""

import json
import shutil
import sqlite3

import pytest

from archsearch.cli.main import main


def search_args(table, out, *extra):
    return [
        "search", "--space", "nb201", "--strategy", "evolution", "--evaluator", "nb201-table",
        "--table", str(table), "--dataset", "cifar10", "--seed", "0", "--out", str(out), *extra,
    ]  # fmt: skip


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_search_prints_a_machine_readable_result(tmp_path, capsys, nb201_csv):
    result = run_json(capsys, search_args(nb201_csv, tmp_path / "s", "--budget", "50", "--json"))
    assert result["n_evaluations"] == 50
    assert result["best"]["arch"].startswith("|") and result["best"]["objective"] > 80
    assert result["best"]["reported"] > 80


def test_show_gives_summary_and_trajectory(tmp_path, capsys, nb201_csv):
    main(search_args(nb201_csv, tmp_path / "s", "--budget", "20", "--quiet"))
    capsys.readouterr()
    shown = run_json(capsys, ["show", str(tmp_path / "s"), "--json"])
    assert shown["n_evaluations"] == 20 and len(shown["trajectory"]) == 20
    assert main(["show", str(tmp_path / "s")]) == 0
    text = capsys.readouterr().out
    assert "best" in text and "trajectory" in text
    assert "cifar10_valid = " in text and "cifar10_test = " in text


def test_the_summary_names_no_reported_metric_for_an_evaluator_without_one():
    from archsearch.cli.search_cmd import format_summary

    summary = {
        "config": {"space": {"name": "nb201"}, "strategy": {"name": "random"},
                   "evaluator": {"name": "supernet"}, "seed": 0},
        "n_evaluations": 1, "n_failed": 0, "elapsed_seconds": 0.1,
        "objective": "inherited_valid_accuracy", "reported": None,
        "best": {"trial": 0, "arch": "a", "objective": 50.0, "reported": None},
    }  # fmt: skip
    text = format_summary(summary, None)
    assert text.endswith("inherited_valid_accuracy = 50.0000")  # no "None = -"


@pytest.mark.slow
def test_resume_finishes_an_interrupted_study_like_an_uninterrupted_one(
    tmp_path, capsys, nb201_csv
):
    straight = run_json(capsys, search_args(nb201_csv, tmp_path / "a", "--budget", "80", "--json"))
    run_json(capsys, search_args(nb201_csv, tmp_path / "b", "--budget", "80", "--json"))
    # cut study b back to its first 30 trials, as if it had been killed there
    with sqlite3.connect(tmp_path / "b" / "study.db") as db:
        db.execute("DELETE FROM trials WHERE number >= 30")
    resumed = run_json(capsys, ["resume", str(tmp_path / "b"), "--json"])
    assert resumed["n_evaluations"] == 80
    assert resumed["best"] == straight["best"]


def test_list_names_every_kind_of_component(capsys):
    listing = run_json(capsys, ["list", "--json"])
    assert {"space", "strategy", "evaluator"} <= set(listing)
    assert {"random", "evolution", "local"} <= set(listing["strategy"])


@pytest.mark.parametrize(
    "change, message",
    [
        (["--space", "nb999"], "unknown space 'nb999'"),
        (["--strategy", "genetic-magic"], "unknown strategy 'genetic-magic'"),
        (["--dataset", "mnist-9000"], "unknown NAS-Bench-201 dataset 'mnist-9000'"),
        (["--budget", "0"], "--budget must be > 0"),
        (["--table", "/no/such/table.csv"], "table not found"),
    ],
)
def test_bad_input_gives_one_error_line_and_exit_status_2(
    tmp_path, capsys, nb201_csv, change, message
):
    argv = search_args(nb201_csv, tmp_path / "s", "--budget", "5")
    for flag, value in zip(change[::2], change[1::2], strict=True):
        argv[argv.index(flag) + 1] = value
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsearch: error:") and message in err[0]
    assert not (tmp_path / "s").exists()


def test_a_corrupt_table_is_reported_not_searched(tmp_path, capsys, nb201_csv):
    corrupt = tmp_path / "corrupt.csv"
    lines = nb201_csv.read_text().splitlines()
    corrupt.write_text("\n".join(lines[:5000]) + "\n")  # truncated file
    assert main(search_args(corrupt, tmp_path / "s", "--budget", "5")) == 2
    assert "architectures missing" in capsys.readouterr().err


def test_an_out_directory_holding_another_study_is_refused_untouched(tmp_path, capsys, nb201_csv):
    main(search_args(nb201_csv, tmp_path / "s", "--budget", "10", "--quiet"))
    before = (tmp_path / "s" / "study.db").read_bytes()
    argv = search_args(nb201_csv, tmp_path / "s", "--budget", "10")
    argv[argv.index("evolution")] = "random"
    assert main(argv) == 2
    assert "holds a different study" in capsys.readouterr().err
    assert (tmp_path / "s" / "study.db").read_bytes() == before


def test_unknown_flags_and_missing_studies_exit_2(tmp_path, capsys):
    assert main(["search", "--frobnicate"]) == 2
    assert main(["show", str(tmp_path / "nothing")]) == 2
    assert main(["resume", str(tmp_path / "nothing")]) == 2
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_generic_csv_table_is_searched_with_its_own_space(tmp_path, capsys):
    table = tmp_path / "t.csv"
    rows = ["depth,width,acc,test"]
    rows += [f"{d},{w},{80 + d + w / 16},{79 + d + w / 16}" for d in (1, 2, 3) for w in (16, 32)]
    table.write_text("\n".join(rows) + "\n")
    argv = ["search", "--evaluator", "table", "--table", str(table), "--objective", "acc",
            "--reported", "test", "--strategy", "random", "--budget", "6", "--out",
            str(tmp_path / "s"), "--json"]  # fmt: skip
    result = run_json(capsys, argv)
    assert result["config"]["space"]["name"] == "table"
    assert json.loads(result["best"]["arch"]) == {"depth": 3, "width": 32}
    assert result["best"]["reported"] == 84.0
