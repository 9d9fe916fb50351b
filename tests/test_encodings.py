"""Architecture encodings: one-hot, adjacency, path, and the fallback on spaces without graphs."""

import numpy as np
import pytest

from archsearch.errors import InvalidArchitectureError
from archsearch.space import Decision, NB201Space, SearchSpace
from archsearch.space.encodings import (
    ENCODINGS,
    PathEncoder,
    cell_graph,
    encode,
    encode_batch,
    live_paths,
    resolve_kind,
)

EXAMPLE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


class TinySpace(SearchSpace):
    """A hand-made space with no cell graph (like a define-by-run model or a table)."""

    name = "tiny"

    def __init__(self):
        super().__init__([Decision("width", (16, 32, 64)), Decision("act", ("relu", "gelu"))])


def test_every_known_encoding_is_a_fixed_length_vector_on_nb201():
    space = NB201Space()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(20)]
    for kind in ENCODINGS:
        matrix = encode_batch(space, archs, kind)
        assert matrix.shape[0] == 20 and matrix.dtype == np.float32
        assert len({matrix.shape[1]} | {len(encode(space, a, kind)) for a in archs}) == 1


def test_path_encoding_lists_the_operation_sequence_of_every_live_path():
    space = NB201Space()
    arch = space.from_string(EXAMPLE)
    paths = set(live_paths(*space.graph(arch)))
    # node 3 <- 0 (skip), <- 1 (conv3, then conv3), <- 2 (skip, fed by conv3 and conv3->pool)
    assert paths == {
        ("skip_connect",),
        ("nor_conv_3x3", "nor_conv_3x3"),
        ("nor_conv_3x3", "skip_connect"),
        ("nor_conv_3x3", "avg_pool_3x3", "skip_connect"),
    }
    encoder = PathEncoder(space)
    assert len(encoder) == 4 + 4**2 + 4**3  # non-zero operations, paths of 1..3 of them
    vector = encode(space, arch, "path")
    assert vector.sum() == 4
    assert {encoder.paths[i] for i in np.flatnonzero(vector)} == paths


def test_paths_through_none_do_not_exist():
    space = NB201Space()
    arch = space.from_string("|none~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    assert live_paths(*space.graph(arch)) == [("nor_conv_3x3", "nor_conv_1x1")]
    empty = space.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert not encode(space, empty, "path").any()


def test_path_encoding_is_equal_for_cells_differing_only_in_a_dead_branch():
    space = NB201Space()
    # node 1's only consumer edge (3 <- 1) is none: whatever edge 1 <- 0 holds is dead
    a = space.from_string(
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"
    )
    b = space.from_string(
        "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"
    )
    assert a != b
    assert np.array_equal(encode(space, a, "path"), encode(space, b, "path"))
    assert space.isomorphism_hash(a) == space.isomorphism_hash(b)


def test_cell_graph_cuts_every_edge_of_a_none_operation():
    space = NB201Space()
    arch = space.from_string("|none~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|none~2|")
    graph = cell_graph(space, arch)
    names = ["input"] + [arch[d.label] for d in space.decisions] + ["output"]
    for k, name in enumerate(names):
        if name == "none":
            assert not graph.adjacency[k].any() and not graph.adjacency[:, k].any()
    assert not graph.adjacency[:, -1].any()  # every edge into node 3 is none


def test_spaces_without_a_graph_fall_back_to_onehot():
    space = TinySpace()
    arch = space.make({"width": 32, "act": "gelu"})
    onehot = [0, 1, 0, 0, 1]
    for kind in ("path", "adjacency", "onehot"):
        assert resolve_kind(space, kind) == "onehot"
        assert encode(space, arch, kind).tolist() == onehot


def test_an_unknown_encoding_is_refused_with_the_known_ones():
    with pytest.raises(InvalidArchitectureError, match=r"unknown encoding 'bogus'.*onehot.*path"):
        encode(NB201Space(), NB201Space().from_string(EXAMPLE), "bogus")
    with pytest.raises(InvalidArchitectureError, match="GATES encoding is learned"):
        encode(TinySpace(), TinySpace().make({"width": 16, "act": "relu"}), "gates")
