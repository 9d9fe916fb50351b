"""Measured latency and peak memory of a forward pass (``archsearch.hardware.measure``)."""

import pytest
import torch

from archsearch.hardware.measure import MB, measure_latency, peak_memory_mb


def convs(depth: int, channels: int = 64) -> torch.nn.Module:
    layers = [torch.nn.Conv2d(3, channels, 3, padding=1)]
    for _ in range(depth - 1):
        layers += [torch.nn.ReLU(), torch.nn.Conv2d(channels, channels, 3, padding=1)]
    return torch.nn.Sequential(*layers)


def weight_mb(model: torch.nn.Module) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / MB


def test_peak_memory_is_the_weights_plus_the_largest_live_activations():
    model = convs(2)
    feature_map = 64 * 32 * 32 * 4 / MB  # one float32 64x32x32 activation
    activations = peak_memory_mb(model, (3, 32, 32)) - weight_mb(model)
    # the ReLU's output and the second convolution's output are alive together
    assert 2 * feature_map <= activations <= 3 * feature_map
    batch = peak_memory_mb(model, (3, 32, 32), batch_size=4) - weight_mb(model)
    assert batch == pytest.approx(4 * activations, rel=0.1)
    assert model.training, "the model's mode is restored"


class Probe(torch.nn.Module):
    """Records how it is run: calls, mode, gradient recording and thread count."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, torch.is_grad_enabled(), torch.get_num_threads()))
        return self.conv(x)


def test_latency_times_repeated_inference_runs_at_the_thread_count_and_restores_the_mode():
    model = Probe()
    measured = measure_latency(model, (3, 16, 16), threads=1, max_run_time=0.2)
    assert model.training, "the model's mode is restored"
    assert measured.blocks >= 1 and len(model.seen) > measured.blocks
    assert set(model.seen) == {(False, False, 1)}, "eval mode, no gradients, one thread"
    assert 0 <= measured.iqr_ms < measured.median_ms


def test_interleaved_rounds_open_and_close_with_the_reference_and_visit_every_network():
    from archsearch.hardware.protocol import interleaved_latencies

    calls = []

    def recorder(name):
        return lambda: calls.append(name)

    measured, reference_ms = interleaved_latencies(
        [recorder("a"), recorder("b")], recorder("ref"), rounds=2, min_run_time=0.001
    )
    assert len(measured) == 2 and reference_ms > 0
    assert all(ratio > 0 and spread >= 0 for ratio, spread in measured)
    # collapse the repeated calls of one timing into one visit
    visits = [name for i, name in enumerate(calls) if i == 0 or calls[i - 1] != name]
    # (the reference closing round 1 and opening round 2 are back to back: one visit)
    assert visits == ["ref", "a", "b", "ref", "a", "b", "ref"]


def test_measure_many_puts_every_chunk_on_one_scale():
    from archsearch.hardware.protocol import measure_many

    models = [convs(1, 4) for _ in range(3)]
    latencies, reference_ms = measure_many(models, (3, 8, 8), convs(1, 4), chunk=2, rounds=1)
    assert len(latencies) == 3 and reference_ms > 0 and all(ms > 0 for ms in latencies)
