"""The NAS-Bench-201 network builder: faithful costs, any input size, plain-PyTorch export."""

import csv
from pathlib import Path

import pytest
import torch

from archsearch.hardware import count_params
from archsearch.space.nb201 import NB201Space
from archsearch.space.nb201_network import NB201Network

REFERENCE_COSTS = Path(__file__).parents[1].parent / "shared/data/nb201/reference_costs.csv"
ALL_NONE = [["none"], ["none", "none"], ["none", "none", "none"]]
MIXED = [
    ["nor_conv_3x3"],
    ["skip_connect", "nor_conv_1x1"],
    ["avg_pool_3x3", "none", "nor_conv_3x3"],
]


def reference_rows() -> list[dict[str, str]]:
    with REFERENCE_COSTS.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("row", reference_rows(), ids=lambda row: row["params_millions"])
def test_parameter_count_equals_the_benchmark_exactly(row: dict[str, str]) -> None:
    space = NB201Space()
    model = space.build(space.from_string(row["arch"]), (3, 32, 32), 10)
    assert count_params(model) == round(float(row["params_millions"]) * 1e6)


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32), (2, 7, 9)])
@pytest.mark.slow
def test_output_has_one_logit_per_class_for_any_input_size(shape: tuple[int, ...]) -> None:
    model = NB201Network(MIXED, in_channels=shape[0], num_classes=7, channels=4, cells_per_stage=1)
    assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_stages_double_width_and_halve_resolution() -> None:
    model = NB201Network(MIXED, in_channels=1, num_classes=10, channels=4, cells_per_stage=2)
    x = model.stem(torch.randn(1, 1, 28, 28))
    sizes = []
    for layer in model.cells:
        x = layer(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(4, 28, 28)] * 2 + [(8, 14, 14)] * 3 + [(16, 7, 7)] * 3


def test_all_none_cell_gives_finite_output_of_the_right_shape() -> None:
    model = NB201Network(ALL_NONE, in_channels=1, num_classes=10, channels=4, cells_per_stage=1)
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(model.cells[0](x), torch.zeros_like(x))
    out = model(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_none_edge_contributes_nothing() -> None:
    with_none = [["skip_connect"], ["none", "skip_connect"], ["none", "none", "skip_connect"]]
    cell = NB201Network(with_none, 1, 10, channels=4, cells_per_stage=1).cells[0]
    x = torch.randn(1, 4, 5, 5)
    assert torch.equal(cell(x), x)


@pytest.mark.slow
def test_export_round_trip_loads_in_plain_pytorch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = NB201Network(MIXED, in_channels=3, num_classes=10, channels=8, cells_per_stage=1)
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    path = tmp_path / "nb201.pt2"
    torch.export.save(torch.export.export(model, (x,)), path)
    loaded = torch.export.load(path).module()
    torch.testing.assert_close(loaded(x), model(x))


def test_module_imports_only_torch() -> None:
    source = Path(__file__).parents[1] / "archsearch/space/nb201_network.py"
    assert "archsearch" not in "".join(
        line for line in source.read_text().splitlines() if line.startswith(("import", "from"))
    )


def test_unknown_operation_is_named_in_the_error() -> None:
    cell = [["conv_5x5"], ["none", "none"], ["none", "none", "none"]]
    with pytest.raises(ValueError, match=r"conv_5x5.*nor_conv_3x3"):
        NB201Network(cell, in_channels=3, num_classes=10)


def test_malformed_cell_is_rejected() -> None:
    with pytest.raises(ValueError, match="3 lists"):
        NB201Network([["none"], ["none"]], in_channels=3, num_classes=10)
