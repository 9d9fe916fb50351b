"""Shared fixtures: the NAS-Bench-201 table from ../shared and small helpers."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB201_CSV = ROOT.parent / "shared" / "data" / "nb201" / "nb201.csv"
REFERENCE_COSTS = ROOT.parent / "shared" / "data" / "nb201" / "reference_costs.csv"


@pytest.fixture(scope="session")
def nb201_csv() -> Path:
    if not NB201_CSV.is_file():
        pytest.fail(f"NAS-Bench-201 table missing at {NB201_CSV}")
    return NB201_CSV


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test, restored after: training tests are faster and
    steadier so on a 2-core machine. Use ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
