"""NAS-Bench-201 with a hardware table: measured figures joined to the accuracies, known
before evaluating, so accuracy x latency searches and latency budgets run at table speed."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from archsearch.cli.main import main
from archsearch.errors import DataError
from archsearch.evaluate.tabular import NB201TableEvaluator, load_hardware_table
from archsearch.space import NB201Space

NB201_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nb201" / "nb201.csv"
COST = {"none": 0.0, "skip_connect": 0.1, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0}
COST["avg_pool_3x3"] = 2.0


@pytest.fixture(scope="module")
def hardware(tmp_path_factory):
    """A hardware table of all 15,625 cells whose latency adds up over the operations."""
    path = tmp_path_factory.mktemp("hw") / "nb201_latency.csv"
    space = NB201Space()
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "latency_ms", "peak_memory_mb"])
        for arch in space.enumerate():
            ms = 1.0 + sum(COST[str(op)] for op in arch.to_dict().values())
            writer.writerow([space.to_string(arch), ms, ms / 4])
    return path


def test_measured_figures_are_values_known_before_evaluating(hardware):
    space = NB201Space()
    evaluator = NB201TableEvaluator(str(NB201_CSV), hardware=str(hardware))
    arch = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    )
    known = evaluator.cheap_values(arch, space)
    assert known["latency_ms"] == pytest.approx(1 + 3 + 3 + 0.1 + 2)
    assert {"latency_ms", "peak_memory_mb", "params"} <= evaluator.value_names(space)
    values = evaluator.evaluate(arch, space).values
    assert values["latency_ms"] == known["latency_ms"] and "cifar10_valid" in values


def table_search_trials(tmp_path, capsys, *options: str) -> list[dict]:
    """The trials of a two-objective mo-evolution search on the NAS-Bench-201 table."""
    out = tmp_path / "s"
    args = ["search", "--evaluator", "nb201-table", "--table", str(NB201_CSV), *options]
    args += ["--strategy", "mo-evolution", "--out", str(out), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["show", str(out), "--json", "--trials"]) == 0
    return json.loads(capsys.readouterr().out)["trials"]


def test_an_accuracy_by_latency_search_with_a_latency_budget(tmp_path, hardware, capsys):
    trials = table_search_trials(
        tmp_path, capsys, "--evaluator-opt", f"hardware={hardware}",
        "--objective", "cifar10_valid:max", "--objective", "latency_ms:min",
        "--constraint", "latency_ms<=10", "--budget", "40",
    )  # fmt: skip
    done = [t for t in trials if t["status"] == "complete"]
    refused = [t for t in trials if t["status"] == "infeasible"]
    assert len(done) == 40 and all(t["values"]["latency_ms"] <= 10 for t in done)
    assert all(t["values"]["latency_ms"] > 10 for t in refused)


@pytest.mark.parametrize(
    "text, message",
    [
        ("index,latency_ms\n", "starts with 'arch'"),
        ("arch,latency_ms\n|x|,fast\n", "line 2: expected arch and 1 numbers"),
        ("arch,latency_ms\n|x|,1,2\n", "line 2"),
    ],
)
def test_a_malformed_hardware_table_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "hw.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load_hardware_table(str(path))


# ------------------------------------------------ the table this project measured and ships
ROOT = Path(__file__).resolve().parents[1]


def test_the_packaged_table_is_the_repositorys_and_measures_every_cell():
    import gzip

    from archsearch.tables.nb201 import HARDWARE, SIZE, nb201_hardware

    shipped = ROOT / "archsearch" / "tables" / "data" / "nb201_latency.csv.gz"
    repository = (ROOT / "data" / "nb201_latency.csv").read_bytes()
    assert gzip.decompress(shipped.read_bytes()) == repository
    figures = nb201_hardware()
    assert set(figures) == set(HARDWARE)
    assert all(len(column) == SIZE for column in figures.values())


def test_the_measured_latencies_follow_what_the_cells_compute():
    """Real measurements, not a made-up column: each figure rises with the FLOPs of the
    cell (rank correlation), the cell of six 3x3 convolutions costs more than twice the one of
    six skips in time and memory, and each latency's spread over rounds is small."""
    from scipy.stats import spearmanr

    from archsearch.tables.nb201 import nb201_costs, nb201_hardware

    figures, flops = nb201_hardware(), nb201_costs("cifar10")["flops"]
    space = NB201Space()
    names = ("latency_ms", "onnx_latency_ms", "peak_memory_mb")
    rho = {name: spearmanr(figures[name], flops)[0] for name in names}
    # eager PyTorch pays a dispatch per operation, pooling and skips included: FLOPs rank
    # its latency only loosely (about 0.5), ONNX Runtime's well, memory almost exactly
    assert rho["latency_ms"] > 0.3 and rho["onnx_latency_ms"] > 0.7, rho
    assert rho["peak_memory_mb"] > 0.9, rho
    labels = [d.label for d in space.decisions]

    def index_of(op: str) -> int:
        return space.index(space.make(dict.fromkeys(labels, op)))

    convs, skips = index_of("nor_conv_3x3"), index_of("skip_connect")
    for name in names:
        assert figures[name][convs] > 2 * figures[name][skips], name
    # the IQR over interleaved rounds is small beside the figure for most cells
    assert float(np.median(figures["latency_iqr_ms"] / figures["latency_ms"])) < 0.2


def test_nb201_table_reports_the_measured_figures_on_cifar10_and_not_elsewhere():
    from archsearch.tables.nb201 import HARDWARE, nb201_hardware

    space = NB201Space()
    arch = space.from_index(4321)
    cifar10 = NB201TableEvaluator(str(NB201_CSV))
    known = cifar10.cheap_values(arch, space)
    assert {name: known[name] for name in HARDWARE} == {
        name: float(column[4321]) for name, column in nb201_hardware().items()
    }
    assert set(HARDWARE) <= cifar10.value_names(space)
    imagenet = NB201TableEvaluator(str(NB201_CSV), dataset="imagenet16")
    assert not set(HARDWARE) & set(imagenet.cheap_values(arch, space))


def test_accuracy_by_measured_latency_runs_at_table_speed_without_options(tmp_path, capsys):
    trials = table_search_trials(
        tmp_path, capsys, "--objective", "cifar10_valid:max",
        "--objective", "onnx_latency_ms:min", "--budget", "60",
    )  # fmt: skip
    assert len(trials) == 60 and all(t["values"]["onnx_latency_ms"] > 0 for t in trials)
