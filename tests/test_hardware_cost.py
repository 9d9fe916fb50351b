"""Parameter and FLOP counts: exact on known layers, ranking like NAS-Bench-201's FLOPs."""

import csv
from pathlib import Path

import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from archsearch.hardware import count_flops, count_params
from archsearch.space.nb201 import NB201Space

REFERENCE_COSTS = Path(__file__).parents[1].parent / "shared/data/nb201/reference_costs.csv"


def test_count_params_counts_only_trainable_parameters() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    model[2].requires_grad_(False)
    assert count_params(model) == (4 * 3 + 3) + (3 + 3)


def test_count_flops_is_two_per_multiply_add_and_scales_with_batch() -> None:
    conv = nn.Conv2d(2, 5, 3, padding=1, bias=False)
    macs = 5 * 8 * 8 * 2 * 3 * 3
    assert count_flops(conv, (2, 8, 8)) == 2 * macs
    assert count_flops(conv, (2, 8, 8), batch_size=3) == 3 * 2 * macs


def test_count_flops_restores_training_mode_and_keeps_bn_statistics() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    model.train()
    before = model[1].running_mean.clone()
    count_flops(model, (1, 6, 6))
    assert model.training and model[1].training
    assert torch.equal(model[1].running_mean, before)


@pytest.mark.slow
def test_flops_rank_reference_architectures_like_the_benchmark() -> None:
    space = NB201Space()
    with REFERENCE_COSTS.open() as f:
        rows = list(csv.DictReader(f))
    ours = [
        count_flops(space.build(space.from_string(r["arch"]), (3, 32, 32), 10), (3, 32, 32))
        for r in rows
    ]
    published = [float(r["flops_millions"]) for r in rows]
    assert spearmanr(ours, published).statistic == 1.0
