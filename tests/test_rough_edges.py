"""The rough edges a new user hits (issue 15, section 4): each bad input is one error line and
exit status 2 before any work; SIGTERM says how to resume; help, version and progress."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from archsearch.cli.main import main

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
