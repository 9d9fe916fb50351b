"""``archsearch proxies``, run in-process through ``main(argv)``: the diagnostics table, its
CSV, the per-architecture scores, and one-line errors for bad input."""

import csv
from pathlib import Path

import pytest
import torch

from archsearch.cli.main import main
from archsearch.data import FASHION_MNIST_DIR
from archsearch.proxies import PROXIES
from archsearch.space import NB201Space


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # the command's --threads 1 sets it process-wide


def proxies_args(table, *extra):
    # a width-4, one-cell-per-stage network keeps the test fast; the benchmark's is C=16, N=5
    return [
        "proxies", "--space", "nb201", "--table", str(table), "--dataset", "cifar10",
        "--channels", "4", "--cells-per-stage", "1", "--seed", "0", "--threads", "1", "--quiet",
        *extra,
    ]  # fmt: skip


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_proxies_prints_the_table_and_writes_both_csvs(tmp_path, capsys, nb201_csv):
    table_csv, scores_csv = tmp_path / "diag.csv", tmp_path / "scores.csv"
    argv = proxies_args(
        nb201_csv, "--sample", "12", "--proxies", "all",
        "--csv", str(table_csv), "--scores-out", str(scores_csv),
    )  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ground truth: cifar10_test" in out
    estimators = [*PROXIES.names(), "combined"]
    for name in estimators:
        assert f"\n{name} " in out, name

    rows = read_csv(table_csv)
    assert [r["estimator"] for r in rows] == estimators
    for column in (
        "truth", "n", "kendall", "spearman", "spearman_top5", "spearman_top10",
        "kendall_top10", "precision_top5", "precision_top10", "best_true_rank",
        "worst_true_rank", "spearman_params", "spearman_flops",
    ):  # fmt: skip
        assert column in rows[0], column
    assert {r["truth"] for r in rows} == {"cifar10_test"}
    params_row = next(r for r in rows if r["estimator"] == "params")
    assert float(params_row["spearman_params"]) == pytest.approx(1.0)

    scores = read_csv(scores_csv)
    assert len(scores) == 12
    assert list(scores[0]) == ["arch", *PROXIES.names()]
    space = NB201Space()
    for row in scores:
        space.from_string(row["arch"])  # the benchmark's own string format
        assert float(row["params"]) > 0


@pytest.mark.slow
def test_params_and_flops_are_always_reported_beside_the_chosen_proxies(
    tmp_path, capsys, nb201_csv
):
    scores_csv = tmp_path / "scores.csv"
    argv = proxies_args(
        nb201_csv, "--sample", "12", "--proxies", "synflow,naswot", "--fit-on", "6",
        "--scores-out", str(scores_csv),
    )  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    for name in ("params", "flops", "synflow", "naswot", "combined", "combined-fitted"):
        assert f"\n{name} " in out, name
    assert "\nzen " not in out
    assert list(read_csv(scores_csv)[0]) == ["arch", "params", "flops", "synflow", "naswot"]


@pytest.mark.skipif(
    not Path(FASHION_MNIST_DIR).is_dir(), reason="Fashion-MNIST (dataset-fashion-mnist) missing"
)
@pytest.mark.slow
def test_fashion_mnist_batches_feed_the_data_dependent_proxies(capsys, nb201_csv):
    argv = proxies_args(nb201_csv, "--sample", "6", "--proxies", "snip", "--batch", "fashion-mnist")
    assert main(argv) == 0
    assert "Fashion-MNIST training images" in capsys.readouterr().out


def test_unknown_proxy_is_one_error_line_listing_the_known_ones(capsys, nb201_csv):
    assert main(proxies_args(nb201_csv, "--sample", "5", "--proxies", "snip,magic")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("archsearch: error:") and len(err.splitlines()) == 1
    assert "'magic'" in err
    for name in PROXIES.names():
        assert name in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--batch", "imagenet"], "unknown --batch 'imagenet'"),
        (["--dataset", "mnist"], "unknown NAS-Bench-201 dataset 'mnist'"),
        (["--sample", "1"], "--sample must be in 2..15625"),
        (["--space", "darts"], "supported: nb201"),
        (["--csv", "/no/such/dir/out.csv"], "does not exist"),
    ],
)
def test_bad_input_is_one_error_line_before_any_work(extra, message, capsys, nb201_csv):
    assert main(proxies_args(nb201_csv, "--sample", "5", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
