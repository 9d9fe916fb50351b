"""The benchmark scripts' shared harness: the JSON-lines cache survives a kill, and --json."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import harness  # noqa: E402


def test_the_cache_skips_a_torn_line_and_keeps_the_preferred_row(tmp_path):
    path = tmp_path / "runs.jsonl"
    longer = lambda old, new: new if len(new["curve"]) > len(old["curve"]) else old  # noqa: E731
    cache = harness.Cache(path, key=("strategy", "seed"), prefer=longer)
    cache.add({"strategy": "random", "seed": 0, "curve": [1, 2, 3]})
    cache.add({"strategy": "random", "seed": 0, "curve": [1]})
    cache.add({"strategy": "random", "seed": 1, "curve": [5]})
    with open(path, "a") as f:
        f.write('{"strategy": "random", "seed": 2, "cur')  # a kill in mid-write
    again = harness.Cache(path, key=("strategy", "seed"), prefer=longer)
    assert len(again) == 2 and again.skipped == 1
    assert again.get("random", 0)["curve"] == [1, 2, 3]
    assert again.get("random", 2) is None
    again.add({"strategy": "random", "seed": 2, "curve": [4]})  # a new line after the torn one
    assert harness.Cache(path, key=("strategy", "seed")).get("random", 2)["curve"] == [4]
    assert harness.Cache(None, key=("seed",)).get(0) is None


def test_common_flags_and_the_json_printer(tmp_path, capsys):
    import argparse

    parser = harness.add_common(
        argparse.ArgumentParser(), seeds=3, first_seed=True, workers=2, threads=1, cache=True
    )
    args = parser.parse_args(["--seeds", "2", "--first-seed", "5", "--json"])
    assert list(harness.seed_range(args)) == [5, 6] and args.json == harness.STDOUT
    assert parser.parse_args(["--json", "out.json"]).json == "out.json"
    with harness.json_mode(args):
        head = harness.header(args, "settings here")
    harness.write_json(args.json, {**head, "value": float("nan"), "n": 3})
    out, err = capsys.readouterr()
    assert "command:" in err and "machine:" in err and "settings here" in err
    data = json.loads(out)
    assert data["value"] is None and data["n"] == 3 and data["machine"]["cores"] >= 1
    harness.write_json(tmp_path / "r.json", [1, 2])
    assert json.loads((tmp_path / "r.json").read_text()) == [1, 2]


@pytest.mark.parametrize("info", [harness.machine_info(threads=1, workers=2)])
def test_the_machine_line_names_what_a_reader_compares(info):
    line = harness.machine_line(info)
    for part in ("cores", "load average", "Python", "torch", "workers 2", "UTC"):
        assert part in line
