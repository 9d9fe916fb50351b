"""The DARTS space as a discrete search space: validity, sampling, mutation, genotype strings,
and a stand-alone network that builds, trains and exports on the CPU."""

import math

import numpy as np
import pytest
import torch

from archsearch.errors import InvalidArchitectureError
from archsearch.space import DARTSSpace, make_space
from archsearch.space.darts import CELLS, DARTS_V2, NODES, OPERATIONS, label


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def space() -> DARTSSpace:
    return DARTSSpace(channels=4, layers=3)


def test_darts_space_is_registered_with_its_sizes():
    space = make_space("darts", channels=8, layers=5)
    assert isinstance(space, DARTSSpace)
    assert space.config() == {"name": "darts", "channels": 8, "layers": 5}
    with pytest.raises(InvalidArchitectureError):
        DARTSSpace(channels=7)


def test_each_node_needs_two_distinct_inputs_written_in_increasing_order(space):
    arch = space.from_string(DARTS_V2)
    assert space.is_valid(arch)
    same = arch.replace(**{"normal.n3.in0": 1, "normal.n3.in1": 1})
    swapped = arch.replace(**{"normal.n4.in0": 1, "normal.n4.in1": 0})
    assert not space.is_valid(same) and same not in space
    assert not space.is_valid(swapped)  # the pair is unordered: (0, 1) is its only name


def test_size_counts_input_pairs_and_operations_of_both_cells(space):
    per_cell = math.prod(math.comb(n, 2) * len(OPERATIONS) ** 2 for n in NODES)
    assert space.size() == per_cell**2
    assert len(space.decisions) == 2 * 4 * 4


def test_sampling_is_valid_seeded_and_reaches_every_input(space):
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(300)]
    assert all(space.is_valid(a) for a in archs)
    assert [space.sample(np.random.default_rng(5)) for _ in range(2)] == [
        space.sample(np.random.default_rng(5)) for _ in range(2)
    ]
    for cell in CELLS:
        inputs = {int(a[label(cell, 5, k)]) for a in archs for k in ("in0", "in1")}
        assert inputs == {0, 1, 2, 3, 4}
    ops = {a[label("normal", 4, "op1")] for a in archs}
    assert ops == set(OPERATIONS) and "none" not in ops


def test_mutation_changes_exactly_one_decision_and_stays_valid(space):
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    for _ in range(100):
        child = space.mutate(arch, rng)
        assert space.is_valid(child)
        assert sum(child[k] != arch[k] for k in arch) == 1
        arch = child


def test_neighbours_are_valid_and_one_decision_away(space):
    arch = space.from_string(DARTS_V2)
    neighbours = space.neighbours(arch)
    assert len(set(neighbours)) == len(neighbours) > 2 * 4 * 2 * 6
    assert all(space.is_valid(n) and sum(n[k] != arch[k] for k in arch) == 1 for n in neighbours)


def test_genotype_strings_round_trip_and_read_the_papers_cells(space):
    rng = np.random.default_rng(3)
    for _ in range(20):
        arch = space.sample(rng)
        assert space.from_string(space.to_string(arch)) == arch
        assert space.from_json(space.to_json(arch)) == arch
    v2 = space.from_string(DARTS_V2)
    # node 4 of DARTS_V2 lists (sep_conv_3x3, 1) before (skip_connect, 0): read as a pair
    assert v2["normal.n4.in0"] == 0 and v2["normal.n4.op0"] == "skip_connect"
    assert space.skip_connections(v2, "normal") == 2
    printed = DARTS_V2.replace("[2, 3, 4, 5]", "range(2, 6)")
    assert space.from_string(printed) == v2


@pytest.mark.parametrize(
    "text",
    [
        "not a genotype",
        DARTS_V2.replace("sep_conv_3x3", "conv_7x7", 1),
        DARTS_V2.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', 0)", 1),  # input twice
        DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 7)"),  # no node 7 yet
        DARTS_V2.replace(", ('dil_conv_3x3', 2)", ""),  # seven pairs
    ],
)
def test_bad_genotypes_are_refused_with_a_clear_error(space, text):
    with pytest.raises(InvalidArchitectureError):
        space.from_string(text)


@pytest.mark.slow
def test_darts_network_builds_trains_and_exports_on_cpu(space, tmp_path):
    from archsearch.evaluate.train import TrainingEvaluator
    from archsearch.export import load_metadata
    from archsearch.oneshot.pipeline import export_model, retrain

    arch = space.from_string(DARTS_V2)
    net = space.build(arch, (1, 8, 8), 10)
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    evaluator = TrainingEvaluator(
        dataset="digits",
        epochs=3,
        train_size=512,
        valid_size=300,
        batch_size=32,
        optimizer="adam",
        lr=0.01,
    )
    result, data = retrain(arch, space, evaluator=evaluator, seed=0)
    assert result.values["valid_accuracy"] > 50.0  # far above chance (10%) after 48 steps
    path = export_model(result, data, tmp_path / "darts.pt2", {"arch": space.to_string(arch)})
    loaded = torch.export.load(str(path)).module()
    raw = torch.rand(3, 1, 8, 8)
    expected = result.model.eval()((raw - torch.tensor(data.mean)) / torch.tensor(data.std))
    torch.testing.assert_close(loaded(raw), expected, rtol=1e-4, atol=1e-4)
    assert space.from_string(load_metadata(path)["arch"]) == arch
