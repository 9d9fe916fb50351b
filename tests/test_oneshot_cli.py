"""``archsearch oneshot``: a search from the shell, and user errors as one clear line."""

import argparse
import json

import pytest
import torch

from archsearch.cli import oneshot
from archsearch.errors import ArchsearchError
from archsearch.export import METADATA_KEYS, load_metadata


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="archsearch")
    oneshot.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["oneshot", *argv])
    return args.handler(args)


TINY = [
    "--dataset", "digits", "--train-size", "128", "--valid-size", "128", "--epochs", "1",
    "--batch-size", "32", "--device", "cpu", "--space-opt", "channels=4",
    "--space-opt", "cells_per_stage=1", "--quiet",
]  # fmt: skip


@pytest.mark.slow
def test_oneshot_command_searches_retrains_and_exports(tmp_path, capsys):
    out = tmp_path / "run"
    model = tmp_path / "model.pt2"
    argv = [*TINY, "--method", "gdas", "--arch-lr", "0.003", "--out", str(out),
            "--save-supernet", "--export", str(model), "--retrain-opt", "epochs=1",
            "--retrain-opt", "train_size=128", "--retrain-opt", "valid_size=128"]  # fmt: skip
    assert run(argv) == 0
    summary = json.loads((out / "oneshot.json").read_text())
    assert summary["method"] == "gdas" and summary["epochs_run"] == 1
    assert summary["history"][0]["arch"] == summary["arch"]
    assert (out / "supernet.pt").is_file()
    assert load_metadata(model)["arch"] == summary["arch"]
    assert tuple(load_metadata(model)) == METADATA_KEYS  # the metadata of every export
    assert (out / "study.db").is_file() and summary["study"] == str(out)
    assert summary["retrain"]["test_accuracy"] is not None
    assert "gdas: |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "nas-in-a-day"], "unknown oneshot"),
        (["--method", "darts", "--order", "2", "--method-opt", "xi=-"], "bad options|xi"),
        (["--method", "gdas", "--method-opt", "temperature=3"], "bad options"),
        (["--dataset", "cifar-10"], "unknown dataset"),
        (["--space-opt", "depth=3"], "bad supernet options"),
    ],
)
def test_bad_input_is_an_archsearch_error_and_writes_nothing(tmp_path, argv, message):
    out = tmp_path / "run"
    base = [a for a in TINY if a not in ("cells_per_stage=1",)]
    base = base[: base.index("--space-opt", base.index("channels=4") - 1)] if False else TINY
    with pytest.raises(ArchsearchError, match=message):
        run([*base, *argv, "--out", str(out)])
    assert not out.exists()


def test_an_existing_result_is_never_overwritten(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "oneshot.json").write_text("{}")
    with pytest.raises(ArchsearchError, match="already holds"):
        run([*TINY, "--out", str(out)])
