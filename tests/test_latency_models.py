"""Latency models: NAS-Bench-201's latency units, the per-operation lookup table, its
command and the learned latency predictor."""

import numpy as np
import onnx
import pytest
import torch

from archsearch.cli.main import main
from archsearch.errors import ArchsearchError, DataError
from archsearch.hardware.cost import count_flops, count_params
from archsearch.hardware.latency_model import LatencyPredictor, latency_errors
from archsearch.hardware.lut import CALL, LatencyTable
from archsearch.hardware.onnx import export_onnx
from archsearch.hardware.units import Unit
from archsearch.space import NB201Space

SPACE = NB201Space(channels=8, cells_per_stage=2)
SHAPE = (3, 16, 16)
#: node 1 feeds nothing (edges 2<-1 and 3<-1 are none), so its conv is dead code
DEAD = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("index", [0, 1234, 5555, 15624])
def test_the_units_cut_the_network_exactly(index):
    arch = SPACE.from_index(index)
    network = SPACE.build(arch, SHAPE, 10)
    units = SPACE.latency_units(arch, SHAPE, 10)
    assert sum(count_params(u.build()) for u in units) == count_params(network)
    assert sum(count_flops(u.build(), u.input_shape) for u in units) == count_flops(network, SHAPE)
    every = {u.key for u in SPACE.all_latency_units(SHAPE, 10)}
    assert {u.key for u in units} <= every


def test_liveness_marks_exactly_what_the_onnx_export_drops():
    arch = SPACE.from_string(DEAD)
    units = SPACE.latency_units(arch, SHAPE, 10)
    graph = onnx.load_from_string(export_onnx(SPACE.build(arch, SHAPE, 10), SHAPE)).graph
    convs = sum(node.op_type == "Conv" for node in graph.node)
    live_convs = sum(count_conv(u) for u in units if u.live)
    assert convs == live_convs < sum(count_conv(u) for u in units)
    dead = [u.key for u in units if not u.live]
    assert (
        dead
        == ["nor_conv_3x3:c8:r16"] * 2 + ["nor_conv_3x3:c16:r8"] * 2 + ["nor_conv_3x3:c32:r4"] * 2
    )


def count_conv(unit: Unit) -> int:
    return sum(isinstance(m, torch.nn.Conv2d) for m in unit.build().modules())


def test_the_table_sums_units_subtracting_the_runtime_call_and_skipping_dead_code(tmp_path):
    units = [Unit("a", (1,), object), Unit("b", (1,), object, live=False)]
    eager = LatencyTable("torch", {"a": 2.0, "b": 3.0})
    assert eager.predict(units) == 5.0
    deployed = LatencyTable("onnx", {CALL: 0.5, "a": 2.0, "b": 3.0}, scale=2.0, offset_ms=1.0)
    assert deployed.raw_sum(units) == 0.5 + 1.5
    assert deployed.predict(units) == 2.0 * 2.0 + 1.0
    deployed.save(tmp_path / "t.csv")
    again = LatencyTable.load(tmp_path / "t.csv")
    assert (again.entries, again.scale, again.offset_ms) == (deployed.entries, 2.0, 1.0)
    with pytest.raises(ArchsearchError, match="no unit 'c'"):
        eager.predict([Unit("c", (1,), object)])


@pytest.mark.parametrize(
    "text, message",
    [
        ("key,latency_ms,iqr_ms\n", "no '# runtime=...' first line"),
        ("# runtime=tpu threads=1 batch_size=1\nkey,latency_ms,iqr_ms\n", "unknown runtime"),
        ("# runtime=torch threads=x batch_size=1\n", "malformed first line"),
        ("# runtime=torch threads=1 batch_size=1\nkey,ms\n", "expected the header"),
        ("# runtime=torch threads=1 batch_size=1\nkey,latency_ms,iqr_ms\na,fast,0\n", "line 3"),
    ],
)
def test_a_corrupt_table_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        LatencyTable.load(path)


def test_latency_table_command_measures_every_unit_and_predicts_networks(tmp_path, capsys):
    out = tmp_path / "lut.csv"
    args = ["latency-table", "--space", "nb201", "--space-opt", "channels=8"]
    args += ["--input-shape", "3,16,16", "--runtime", "onnx", "--out", str(out)]
    assert main([*args, "--calibrate", "3"]) == 0
    table = LatencyTable.load(out)
    units = SPACE.all_latency_units(SHAPE, 10)
    assert set(table.entries) == {u.key for u in units} | {CALL}
    assert table.runtime == "onnx" and table.scale != 1.0
    arch = SPACE.from_index(42)
    assert table.predict(SPACE.latency_units(arch, SHAPE, 10)) > 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--space", "darts"], "does not cut its networks into latency units"),
        (["--space", "nb201", "--input-shape", "3x16"], "--input-shape must be C,H,W"),
        (["--space", "nb201", "--calibrate", "-1"], "--calibrate must be >= 0"),
        (["--space", "nb201", "--runtime", "tflite"], "invalid choice"),
    ],
)
def test_latency_table_bad_input_is_one_line_and_status_2(tmp_path, capsys, extra, message):
    assert main(["latency-table", "--out", str(tmp_path / "t.csv"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "t.csv").exists()


def test_the_learned_predictor_recovers_a_latency_that_adds_up_over_operations():
    """A latency made of per-operation costs (what a network measures, noise aside): trained
    on 150 architectures, the GP on one-hot features predicts 150 others almost exactly, and
    LightGBM, which needs far more networks for a sum, does worse."""
    space = NB201Space()
    cost = {"none": 0.0, "skip_connect": 0.1, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0}
    cost["avg_pool_3x3"] = 2.0
    archs = space.distinct_samples(np.random.default_rng(0), 300)
    latency = np.array([1.0 + sum(cost[str(op)] for op in a.to_dict().values()) for a in archs])
    model = LatencyPredictor(space).fit(archs[:150], latency[:150])
    errors = latency_errors(model.predict(archs[150:]), latency[150:])
    assert errors["mape_percent"] < 1 and errors["kendall"] > 0.95
    trees = LatencyPredictor(space, "lightgbm").fit(archs[:150], latency[:150])
    assert latency_errors(trees.predict(archs[150:]), latency[150:])["mape_percent"] > 5
    shuffled = latency_errors(np.random.default_rng(1).permutation(latency[150:]), latency[150:])
    assert shuffled["kendall"] < 0.2


def test_a_calibration_puts_later_measurements_on_its_tables_scale(monkeypatch):
    """The machine slows non-uniformly (now = 2 x then - 0.5 ms, so the reference's ratio is
    off for every other network): the line through the calibration networks measured again
    undoes it exactly, the one-reference ratio does not. Exact, because the measurement is
    stubbed; the real protocol is timed in test_hardware_measure."""
    import archsearch.hardware.protocol as protocol
    from archsearch.hardware.lut import Calibration, calibration_networks

    then = {}  # each module's latency when the table was measured

    class Space:  # an architecture here is its network's latency then
        def build(self, arch, shape, classes):
            model = torch.nn.Identity()
            then[id(model)] = arch
            return model

    def slowed(models, shape, reference, runtime, **_):
        return [2 * then[id(m)] - 0.5 for m in models], 2 * 1.0 - 0.5

    monkeypatch.setattr(protocol, "measure_many", slowed)
    archs = [1.0, 1.5, 2.0, 3.0]
    reference = torch.nn.Identity()
    calibration = Calibration(archs, archs, reference, 1.0, SHAPE, "torch", space=Space())
    models = [Space().build(1.3, SHAPE, 10), Space().build(2.2, SHAPE, 10)]
    values, how = calibration.measure(models)
    assert values == pytest.approx([1.3, 2.2])
    assert how["slope"] == pytest.approx(0.5) and how["intercept_ms"] == pytest.approx(0.25)
    assert how["reference_ms_now"] == 1.5
    assert how["by_reference"] == pytest.approx([2.1 / 1.5, 3.9 / 1.5])  # 8% and 18% over

    monkeypatch.setattr(
        protocol, "measure_many", lambda models, *a, **k: ([1.0] * len(models), 1.0)
    )
    kept = calibration_networks(SPACE, SHAPE, 10, "onnx", 3, seed=1)
    assert (kept.space, kept.num_classes, kept.input_shape, kept.runtime) == (
        SPACE,
        10,
        SHAPE,
        "onnx",
    )
