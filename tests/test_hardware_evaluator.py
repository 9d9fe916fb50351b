"""The hardware evaluator: measured latency (PyTorch, ONNX Runtime) and peak memory as
values, known before training and remembered so that evaluate agrees with them."""

import numpy as np
import pytest
import torch

from archsearch.components import build_evaluator
from archsearch.errors import ArchsearchError
from archsearch.evaluate.hardware import HardwareEvaluator
from archsearch.hardware.onnx import export_onnx, onnx_session
from archsearch.space import NB201Space

SMALL = NB201Space(channels=8, cells_per_stage=1)
FAST = {"input_shape": [3, 16, 16], "max_run_time": 0.05}


def test_every_figure_is_reported_with_its_noise_and_evaluate_agrees_with_cheap_values():
    evaluator = HardwareEvaluator(
        figures=["latency_ms", "onnx_latency_ms", "peak_memory_mb"], **FAST
    )
    arch = SMALL.from_index(4321)
    before = evaluator.cheap_values(arch, SMALL)
    assert (
        set(before)
        == set(evaluator.value_names(SMALL))
        == {
            "latency_ms",
            "latency_iqr_ms",
            "onnx_latency_ms",
            "onnx_latency_iqr_ms",
            "peak_memory_mb",
        }
    )
    assert evaluator.evaluate(arch, SMALL, seed=3).values == before
    for name in ("latency_ms", "onnx_latency_ms"):  # how wide the spread is: the machine's
        assert before[name] > 0 and 0 <= before[name.replace("_ms", "_iqr_ms")] < float("inf")
    assert (evaluator.objective_name, evaluator.objective_direction) == ("latency_ms", "min")
    assert evaluator.reported_name == "peak_memory_mb"


def test_peak_memory_is_deterministic_and_grows_with_the_cell():
    evaluator = HardwareEvaluator(figures=["peak_memory_mb"], input_shape=[3, 16, 16])
    light = SMALL.from_string("|none~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    heavy = SMALL.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "nor_conv_3x3~2|"
    )
    again = HardwareEvaluator(figures=["peak_memory_mb"], input_shape=[3, 16, 16])
    assert evaluator.cheap_values(heavy, SMALL) == again.cheap_values(heavy, SMALL)
    assert (
        evaluator.cheap_values(heavy, SMALL)["peak_memory_mb"]
        > evaluator.cheap_values(light, SMALL)["peak_memory_mb"]
    )


def test_the_onnx_runtime_network_computes_what_the_pytorch_network_computes():
    torch.manual_seed(0)
    model = SMALL.build(SMALL.from_index(777), (3, 16, 16), 10).eval()
    session = onnx_session(export_onnx(model, (3, 16, 16)))
    assert model.training is False
    x = torch.randn(1, 3, 16, 16)
    (ours,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(ours, model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_a_latency_constraint_refuses_networks_before_they_are_trained(tmp_path):
    from archsearch.cli.main import main

    out = tmp_path / "s"
    args = ["search", "--space", "nb201", "--space-opt", "channels=8"]
    args += ["--space-opt", "cells_per_stage=1", "--evaluator", "proxy"]
    args += ["--evaluator-opt", "proxy=params", "--evaluator-opt", "input_shape=[3,16,16]"]
    args += ["--measure", "peak_memory_mb", "--measure-opt", "input_shape=[3,16,16]"]
    args += ["--strategy", "random", "--budget", "6", "--constraint", "peak_memory_mb<=0.12"]
    args += ["--out", str(out), "--quiet"]
    assert main(args) == 0
    from archsearch.study import Study

    rows = Study.load(out).trial_rows()
    refused = [row for row in rows if row["status"] == "infeasible"]
    assert refused and all(row["values"]["peak_memory_mb"] > 0.12 for row in refused)
    done = [row for row in rows if row["status"] == "complete"]
    assert len(done) == 6 and all(row["values"]["peak_memory_mb"] <= 0.12 for row in done)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"figures": ["latency"]}, "unknown hardware figure 'latency'"),
        ({"figures": "latency_ms"}, "figures must be a list"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"threads": 1.5}, "threads must be a positive integer"),
        ({"max_run_time": 0}, "max_run_time must be a positive number"),
        ({"device": "tpu"}, "device must be one of cpu, cuda"),
    ],
)
def test_bad_options_are_one_clear_error(options, message):
    with pytest.raises(ArchsearchError, match=message):
        build_evaluator({"name": "hardware", **options})
