"""The rough edges a new user hits (issue 15, section 4): each bad input is one error line and
exit status 2 before any work; SIGTERM says how to resume; help, version and progress."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archsearch.cli.main import main
from archsearch.errors import ArchsearchError

ROOT = Path(__file__).resolve().parents[1]


def table_search(table, out, *extra):
    return [
        "search", "--evaluator", "nb201-table", "--table", str(table), "--budget", "3",
        "--quiet", "--out", str(out), *extra,
    ]  # fmt: skip


def one_error_line(capsys, argv, message):
    """``argv`` exits 2 with exactly one ``archsearch: error:`` line holding ``message``."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("archsearch: error:") and message in err[0], err[0]
    return err[0]


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a directory")
    return path


# ------------------------------------------------------------------ seeds and --out
@pytest.mark.parametrize("seed", ["-1", str(2**63), "1.5"])
def test_a_seed_outside_0_to_2_63_is_refused_while_parsing(tmp_path, capsys, nb201_csv, seed):
    one_error_line(capsys, table_search(nb201_csv, tmp_path / "s", "--seed", seed), "--seed")
    assert not (tmp_path / "s").exists()


def test_seeds_are_refused_by_every_command_that_takes_one(tmp_path, capsys, nb201_csv):
    one_error_line(capsys, ["export", str(tmp_path), "--to", "m.pt2", "--seed", "-1"], "--seed")
    one_error_line(capsys, ["proxies", "--table", str(nb201_csv), "--seed", "-1"], "--seed")
    one_error_line(capsys, ["oneshot", "--out", str(tmp_path / "o"), "--seed", "-1"], "--seed")


@pytest.mark.parametrize(
    "out, message",
    [
        (lambda tmp, f: f, "is a file, not a directory"),
        (lambda tmp, f: f / "study", "is a file, not a directory"),
        (lambda tmp, f: tmp / ("x" * 300), "name too long"),
        (lambda tmp, f: "", "empty string"),
        (lambda tmp, f: "/proc/archsearch-study", "cannot write in /proc"),
    ],
    ids=["file", "under-a-file", "name-too-long", "empty", "proc"],
)
def test_an_unusable_out_is_one_line_before_any_evaluation(
    tmp_path, capsys, nb201_csv, a_file, monkeypatch, out, message
):
    from archsearch.study import Study

    def no_study(*args, **kwargs):
        raise AssertionError("the study was built before --out was checked")

    monkeypatch.setattr(Study, "from_config", no_study)
    one_error_line(capsys, table_search(nb201_csv, out(tmp_path, a_file)), message)


def test_a_read_only_out_parent_is_refused(tmp_path, capsys, nb201_csv):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        if os.access(parent, os.W_OK):
            pytest.skip("running as root: a read-only mode does not stop this process")
        one_error_line(capsys, table_search(nb201_csv, parent / "s"), "cannot write in")
    finally:
        parent.chmod(0o700)


# ------------------------------------------------------------- export, proxies, oneshot
@pytest.fixture
def table_study(tmp_path, nb201_csv, capsys):
    assert main(table_search(nb201_csv, tmp_path / "study")) == 0
    capsys.readouterr()
    return tmp_path / "study"


@pytest.mark.parametrize(
    "to, message",
    [
        (lambda tmp, f: tmp, "is a directory"),
        (lambda tmp, f: f / "model.pt2", "is a file, not a directory"),
        (lambda tmp, f: "/proc/model.pt2", "cannot write in /proc"),
        (lambda tmp, f: "", "empty string"),
    ],
    ids=["directory", "under-a-file", "proc", "empty"],
)
def test_export_checks_to_before_training_the_winner(
    tmp_path, capsys, table_study, a_file, monkeypatch, to, message
):
    import archsearch.export

    def no_training(*args, **kwargs):
        raise AssertionError("the winner was trained before --to was checked")

    monkeypatch.setattr(archsearch.export, "train_winner", no_training)
    argv = ["export", str(table_study), "--to", str(to(tmp_path, a_file)), "--dataset", "digits"]
    one_error_line(capsys, argv, message)


def test_proxies_checks_csv_before_scoring(tmp_path, capsys, nb201_csv, a_file):
    argv = ["proxies", "--table", str(nb201_csv), "--sample", "5", "--proxies", "synflow"]
    one_error_line(capsys, [*argv, "--csv", "/proc/diagnostics.csv"], "--csv")
    one_error_line(capsys, [*argv, "--csv", str(a_file / "d.csv")], "is a file")
    one_error_line(capsys, [*argv, "--scores-out", str(tmp_path)], "is a directory")


@pytest.mark.parametrize(
    "extra, message",
    [
        (lambda tmp, f: ["--out", str(f)], "is a file, not a directory"),
        (lambda tmp, f: ["--out", "/proc/oneshot"], "cannot write in /proc"),
        (lambda tmp, f: ["--out", str(tmp / "o"), "--export", "/proc/m.pt2"], "--export"),
        (lambda tmp, f: ["--out", str(tmp / "o"), "--export", str(f / "m")], "is a file"),
        (lambda tmp, f: ["--out", str(tmp / "o"), "--valid-size", "1.0"], "--valid-size"),
    ],
    ids=["out-file", "out-proc", "export-proc", "export-under-file", "valid-fraction-1"],
)
def test_oneshot_checks_its_paths_before_loading_data(
    tmp_path, capsys, a_file, monkeypatch, extra, message
):
    import archsearch.oneshot

    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the paths were checked")

    monkeypatch.setattr(archsearch.oneshot, "load_search_data", no_data)
    argv = ["oneshot", "--dataset", "digits", "--epochs", "1", *extra(tmp_path, a_file)]
    one_error_line(capsys, argv, message)


def test_a_validation_fraction_of_one_is_refused_by_the_data_api():
    from archsearch.data.base import _count
    from archsearch.errors import ArchsearchError

    with pytest.raises(ArchsearchError, match=r"in \(0, 1\)"):
        _count(1.0, 100, "valid_size")
    assert _count(1, 100, "valid_size") == 1 and _count(0.25, 100, "valid_size") == 25


def test_a_checkpoint_of_random_bytes_is_one_line(tmp_path, capsys):
    bad = tmp_path / "supernet.pt"
    bad.write_bytes(os.urandom(4096))
    argv = ["search", "--evaluator", "supernet", "--evaluator-opt", f"checkpoint={bad}",
            "--strategy", "random", "--budget", "2", "--quiet", "--out",
            str(tmp_path / "s")]  # fmt: skip
    line = one_error_line(capsys, argv, "cannot read supernet checkpoint")
    assert "weights_only" not in line  # no advice to load it unsafely


# ----------------------------------------------------------------------- messages
def test_unknown_names_are_pluralised_properly(tmp_path, capsys, nb201_csv):
    argv = table_search(nb201_csv, tmp_path / "s", "--strategy", "genetic-magic")
    one_error_line(capsys, argv, "known strategies: ")
    argv = ["proxies", "--table", str(nb201_csv), "--proxies", "magic"]
    one_error_line(capsys, argv, "known proxies: ")


def test_fit_on_with_a_too_small_sample_names_the_sample_not_an_empty_range(capsys, nb201_csv):
    argv = ["proxies", "--table", str(nb201_csv), "--sample", "5", "--fit-on", "3"]
    one_error_line(capsys, argv, "--fit-on needs --sample >= 6")


# ----------------------------------------------------------------- version and help
def test_version_and_bare_command_print_the_version_and_the_help(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == "archsearch 0.1.0"
    assert main([]) in (0, 2)
    out = capsys.readouterr().out
    assert out.startswith("usage: archsearch") and "search" in out and "oneshot" in out


def test_search_help_names_components_and_defaults_without_importing_torch():
    code = (
        "import sys\n"
        "from archsearch.cli.main import main\n"
        "try:\n    main(['search', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    help_text = " ".join(done.stdout.split())
    assert done.stdout.strip().endswith("NO-TORCH")
    for name in ("evolution", "bananas", "nb201-table", "darts"):
        assert name in help_text
    assert "fashion-mnist" in help_text and "digits" in help_text
    assert "(default: evolution)" in help_text and "(default: train)" in help_text
    assert "(default: 0)" in help_text  # --seed


# ------------------------------------------------------------------------- progress
def test_without_a_terminal_progress_is_a_log_line_per_tenth_of_the_budget(
    tmp_path, capsys, nb201_csv
):
    argv = table_search(nb201_csv, tmp_path / "s")
    argv[argv.index("--budget") + 1] = "20"
    for quiet in (["--quiet"], []):  # --quiet, and a stderr that is not a terminal
        if not quiet:
            argv.remove("--quiet")
            argv[argv.index("--out") + 1] = str(tmp_path / "t")
        assert main(argv) == 0
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 10 and "\r" not in "".join(lines)
        assert lines[0].startswith("archsearch: search 2/20 evaluations, ")
        assert "best cifar10_valid " in lines[-1] and "(trial " in lines[-1]
        assert "ETA " in lines[0] and lines[-1].endswith("ETA 0 s")


def test_the_bar_shows_the_best_so_far_and_an_eta(nb201_csv):
    import io

    from archsearch.study import Budget, Study
    from archsearch.study.progress import Progress

    config = {"space": {"name": "nb201"}, "strategy": {"name": "random"},
              "evaluator": {"name": "nb201-table", "table": str(nb201_csv)},
              "budget": {"evaluations": 5, "seconds": None}}  # fmt: skip
    study = Study.from_config(config)
    stream = io.StringIO()
    bar = Progress(study, Budget(5), "bar", stream=stream)
    for _ in range(3):
        study.optimize(study.n_finished + 1)
        bar.update()
    bar.close()
    text = stream.getvalue()
    assert "3/5" in text and "best=cifar10_valid" in text and "ETA=" in text


# ------------------------------------------------------- SIGTERM and a running study
def start_search(table, out, delay, budget):
    """A CLI search in a child process, evaluating slowly (tests/slow_table.py)."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "import slow_table\n"
        "from archsearch.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["search", "--evaluator", "slow-nb201-table", "--table", str(table),
            "--evaluator-opt", f"delay={delay}", "--strategy", "random", "--budget",
            str(budget), "--quiet", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv], stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for_trials(out, at_least, timeout=60.0):
    """Wait until the child's study holds ``at_least`` trials (running or finished)."""
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{out / 'study.db'}?mode=ro", uri=True) as db:
                if db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] >= at_least:
                    return
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no {at_least} trials in {out} after {timeout} s")


@pytest.mark.slow
def test_sigterm_says_how_to_resume_and_the_study_resumes(tmp_path, capsys, nb201_csv):
    import slow_table  # noqa: F401  (registers the evaluator for the resume below)

    out = tmp_path / "s"
    child = start_search(nb201_csv, out, delay=0.05, budget=40)
    wait_for_trials(out, 5)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM
    assert "'archsearch resume DIR' continues the study" in err and "Traceback" not in err
    assert main(["resume", str(out), "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["n_evaluations"] == 40


@pytest.mark.slow
def test_show_says_a_first_trial_is_running_and_since_when(tmp_path, capsys, nb201_csv):
    out = tmp_path / "s"
    child = start_search(nb201_csv, out, delay=60, budget=2)
    try:
        wait_for_trials(out, 1)
        assert main(["show", str(out)]) == 0
        text = capsys.readouterr().out
        assert "running    trial 0 since " in text and "none has finished yet" in text
        assert "best       none yet (no trial has finished)" in text
        assert "evaluated  0 (0 failed)" in text
    finally:
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=60)
    assert main(["show", str(out)]) == 0
    assert "interrupted trial 0" in capsys.readouterr().out  # no runner holds it now


# ------------------------------------------------------------ the generic table evaluator
def test_metric_and_test_columns_of_a_table_never_become_decisions(tmp_path, capsys, nb201_csv):
    from archsearch.errors import DataError
    from archsearch.tables import TableSpace

    space = TableSpace(str(nb201_csv), objective="cifar10_valid")
    labels = [d.label for d in space.decisions]
    assert labels == ["index", "arch"]  # every accuracy column is a metric, *_test ones above all
    table = tmp_path / "t.csv"
    table.write_text("depth,test_rank,acc\n1,1,80.5\n2,2,81.25\n3,3,79.75\n")
    assert [d.label for d in TableSpace(str(table), objective="acc").decisions] == ["depth"]
    with pytest.raises(DataError, match="'test_rank' is a test result"):
        TableSpace(str(table), objective="acc", decisions=["depth", "test_rank"])
    argv = ["search", "--evaluator", "table", "--table", str(nb201_csv), "--objective",
            "cifar10_valid", "--strategy", "random", "--budget", "3", "--quiet", "--json",
            "--out", str(tmp_path / "s")]  # fmt: skip
    assert main(argv) == 0
    best = json.loads(capsys.readouterr().out)["best"]
    assert set(json.loads(best["arch"])) == {"index", "arch"}
    assert "cifar10_test" in best["values"]  # reported as a metric, not searched over


@pytest.mark.parametrize("content", [b"\x00garbage" * 64, pickle.dumps({"a": 1})])
def test_an_export_of_random_bytes_or_a_pickle_is_one_error(tmp_path, content):
    from archsearch.export import load_metadata

    path = tmp_path / "model.pt2"
    path.write_bytes(content)
    with pytest.raises(ArchsearchError, match="not a model exported by archsearch"):
        load_metadata(path)
