import json

import numpy as np
import pytest

from archsearch.errors import InvalidArchitectureError
from archsearch.space import Decision, NB201Space, SearchSpace, make_space
from archsearch.space.base import Architecture

EXAMPLE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


class EvenSum(SearchSpace):
    """A toy constrained space: two decisions whose values must sum to an even number."""

    name = "even-sum"
    constrained = True

    def __init__(self):
        super().__init__([Decision("a", (0, 1, 2)), Decision("b", (0, 1, 2))])

    def is_valid(self, arch):
        return (arch["a"] + arch["b"]) % 2 == 0


def test_architectures_are_immutable_hashable_and_compare_by_value():
    a = Architecture([("x", 1), ("y", "conv")])
    b = Architecture([("x", 1), ("y", "conv")])
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.replace(x=2) != a and a["x"] == 1
    with pytest.raises(TypeError):
        a["x"] = 3


def test_nb201_has_15625_architectures_and_the_benchmark_string_round_trips():
    space = NB201Space()
    assert space.size() == 15_625
    arch = space.from_string(EXAMPLE)
    assert space.to_string(arch) == EXAMPLE
    assert space.from_json(json.loads(json.dumps(space.to_json(arch)))) == arch


def test_nb201_index_order_is_the_benchmarks(nb201_csv):
    import csv

    space = NB201Space()
    with open(nb201_csv) as f:
        rows = [r for _, r in zip(range(50), csv.DictReader(f), strict=False)]
    for row in rows:
        arch = space.from_string(row["arch"])
        assert space.index(arch) == int(row["index"])
        assert space.from_index(int(row["index"])) == arch


@pytest.mark.parametrize(
    "bad, message",
    [
        ("|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv_7x7'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 inputs"),
        ("not an arch", "not a NAS-Bench-201 string"),
    ],
)
def test_nb201_rejects_bad_strings_with_a_clear_message(bad, message):
    with pytest.raises(InvalidArchitectureError, match=message):
        NB201Space().from_string(bad)


def test_mutation_changes_exactly_one_decision_and_neighbours_are_all_such_changes():
    space = NB201Space()
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    for _ in range(50):
        child = space.mutate(arch, rng)
        assert sum(child[k] != arch[k] for k in arch) == 1
    neighbours = space.neighbours(arch)
    assert len(neighbours) == 6 * 4 == len(set(neighbours))


def test_sampling_is_uniform_and_deterministic_given_a_seed():
    space = NB201Space()
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    second = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert first == second
    rng = np.random.default_rng(0)
    counts = {op: 0 for op in space.operations}
    for _ in range(2000):
        counts[space.sample(rng)["1<-0"]] += 1
    assert all(340 < c < 460 for c in counts.values())


def test_constrained_spaces_sample_mutate_and_count_only_valid_architectures():
    space = EvenSum()
    rng = np.random.default_rng(0)
    assert space.size() == 5  # (0,0) (0,2) (1,1) (2,0) (2,2)
    for _ in range(30):
        arch = space.sample(rng)
        assert space.is_valid(arch) and space.is_valid(space.mutate(arch, rng))
    with pytest.raises(InvalidArchitectureError, match="invalid architecture"):
        space.make({"a": 0, "b": 1})


def test_encodings_have_fixed_length_and_identify_the_architecture():
    space = NB201Space()
    rng = np.random.default_rng(0)
    a, b = space.sample(rng), space.sample(rng)
    onehot = space.encode(a)
    assert onehot.shape == (30,) and onehot.sum() == 6
    adjacency = space.encode(a, "adjacency")
    assert adjacency.shape == space.encode(b, "adjacency").shape
    assert not np.array_equal(space.encode(a), space.encode(b))
    with pytest.raises(InvalidArchitectureError, match="unknown encoding"):
        space.encode(a, "wavelet")


def test_nb201_graph_view_puts_operations_on_nodes():
    space = NB201Space()
    adjacency, names = space.graph(space.from_string(EXAMPLE))
    assert names[0] == "input" and names[-1] == "output" and len(names) == 8
    # edge 3<-1 (node 5) reads node 1, which is the output of edge 1<-0 (node 1)
    assert adjacency[1, 5] == 1 and adjacency[0, 1] == 1 and adjacency[5, 7] == 1
    assert adjacency[2, 7] == 0  # edge 2<-0 feeds node 2, not the output


def test_make_space_rejects_unknown_names_with_the_known_list():
    from archsearch.errors import UnknownComponentError

    with pytest.raises(UnknownComponentError, match="known spaces: .*nb201"):
        make_space("nb999")


def test_isomorphic_cells_share_a_hash_and_different_ones_do_not():
    space = NB201Space()
    # the conv on edge 2<-1 is dead: node 2 never reaches the output (3<-2 is none)
    a = space.from_string(
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    )
    b = space.from_string(
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    )
    c = space.from_string(
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    )
    assert space.isomorphism_hash(a) == space.isomorphism_hash(b)
    assert space.isomorphism_hash(a) != space.isomorphism_hash(c)
    zero = space.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    also_zero = space.from_string("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert space.isomorphism_hash(zero) == space.isomorphism_hash(also_zero)


@pytest.mark.slow
def test_nb201_has_fewer_distinct_functions_than_cells():
    space = NB201Space()
    hashes = {space.isomorphism_hash(space.from_index(i)) for i in range(0, 15_625, 7)}
    assert len(hashes) < len(range(0, 15_625, 7))
