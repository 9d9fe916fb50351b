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


def test_a_deeper_network_measures_slower_and_the_spread_is_reported():
    shallow = measure_latency(convs(1), (3, 32, 32))
    deep = measure_latency(convs(6), (3, 32, 32))
    assert deep.median_ms > 2 * shallow.median_ms
    for measured in (shallow, deep):
        assert measured.blocks >= 1 and 0 <= measured.iqr_ms < measured.median_ms
