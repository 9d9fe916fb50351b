"""NAS-Bench-201 with a hardware table: measured figures joined to the accuracies, known
before evaluating, so accuracy x latency searches and latency budgets run at table speed."""

import csv
import json
from pathlib import Path

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


def test_an_accuracy_by_latency_search_with_a_latency_budget(tmp_path, hardware, capsys):
    out = tmp_path / "s"
    args = ["search", "--evaluator", "nb201-table", "--table", str(NB201_CSV)]
    args += ["--evaluator-opt", f"hardware={hardware}", "--strategy", "mo-evolution"]
    args += ["--objective", "cifar10_valid:max", "--objective", "latency_ms:min"]
    args += ["--constraint", "latency_ms<=10", "--budget", "40", "--out", str(out), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["show", str(out), "--json", "--trials"]) == 0
    trials = json.loads(capsys.readouterr().out)["trials"]
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
