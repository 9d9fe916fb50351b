"""Architecture encodings for performance predictors, usable with every space.

White et al. ("A Study on Encodings for Neural Architecture Search", NeurIPS 2020) show
that the encoding matters as much as the model that reads it. Three fixed encodings live
here; the learned graph encoding (GATES, Ning et al. ECCV 2020) is a trained network and
lives in :mod:`archsearch.predict.gates`.

* ``onehot``: one block per decision, one entry per choice (every space has it).
* ``adjacency``: the op-on-node DAG of ``space.graph(arch)`` as its upper-triangular
  adjacency plus a one-hot operation per node (the space's own ``adjacency`` encoding
  where it defines one, as NAS-Bench-201 does).
* ``path``: BANANAS' path encoding (White et al., AAAI 2021, sec. 4): one binary feature per
  possible input-to-output path, a path being the sequence of operations met on the way.
  A path through a zero operation (``none``) carries nothing and does not exist. The
  encoding is invariant to isomorphism: relabelling nodes changes no path.

Graph encodings need a cell graph, which only some spaces have (a ``graph(arch)`` method
returning ``(adjacency, names)`` with node 0 the input and the last node the output). For
any other space (define-by-run models, generic tables) a graph encoding has no meaning and
``encode`` falls back to ``onehot``; :func:`resolve_kind` says which encoding is used.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from archsearch.errors import InvalidArchitectureError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.space.graph import ZERO_OPERATIONS

#: encodings that :func:`encode` knows for every space (graph ones fall back to ``onehot``)
ENCODINGS: tuple[str, ...] = ("onehot", "adjacency", "path")
GRAPH_ENCODINGS = frozenset({"adjacency", "path"})
#: BANANAS truncates the path encoding to its shortest paths when it would be too long
#: (White et al. 2020, "truncated path encoding"); this bounds the vector's length.
MAX_PATHS = 4096


def has_graph(space: SearchSpace) -> bool:
    """Whether ``space`` describes architectures as cell graphs (``space.graph(arch)``)."""
    return space.supports("graph")


def resolve_kind(space: SearchSpace, kind: str) -> str:
    """The encoding :func:`encode` really uses for ``kind`` on ``space`` (graph ones fall back)."""
    known = sorted(set(ENCODINGS) | set(space.encodings))
    if kind not in known:
        raise InvalidArchitectureError(
            f"unknown encoding {kind!r} for space {space.name!r}; known: {known}"
            + ("; the GATES encoding is learned: use archsearch.predict.GATESPredictor.embed"
               if kind in ("gates", "graph") else "")
        )  # fmt: skip
    if kind in space.encodings:
        return kind
    if kind in GRAPH_ENCODINGS and not has_graph(space):
        return "onehot"
    return kind


def operations(space: SearchSpace) -> tuple[str, ...]:
    """The operation vocabulary of a graph space, zero operations excluded.

    A space may declare ``operations`` (the capability); otherwise the string choices of its
    decisions, in order of first appearance, are taken as operations.
    """
    declared = space.operations if space.supports("operations") else None
    if declared is None:
        seen: dict[str, None] = {}
        for decision in space.decisions:
            for value in decision.choices:
                if isinstance(value, str):
                    seen.setdefault(value, None)
        declared = tuple(seen)
    return tuple(op for op in declared if op not in ZERO_OPERATIONS)


@dataclass(frozen=True)
class CellGraph:
    """A cell as an op-on-node DAG in topological order, ready for a graph network.

    ``adjacency[i, j] = 1`` when node ``i`` feeds node ``j`` (``i < j``); edges into and out
    of zero operations are removed, since nothing passes through them. ``ops`` holds each
    node's index in ``("input", "output", "none", *operations)``.
    """

    adjacency: np.ndarray
    ops: np.ndarray


def node_vocabulary(space: SearchSpace) -> tuple[str, ...]:
    """The node labels a :class:`CellGraph` of ``space`` indexes into."""
    return ("input", "output", "none", *operations(space))


def cell_graph(space: SearchSpace, arch: Architecture) -> CellGraph:
    """``space.graph(arch)`` cut at zero operations and put in topological order."""
    if not has_graph(space):
        raise InvalidArchitectureError(
            f"space {space.name!r} has no cell graph; encodings fall back to 'onehot' there"
        )
    adjacency, names = space.graph(arch)
    adjacency = np.asarray(adjacency, dtype=np.float32)
    order = _topological_order(adjacency)
    adjacency = adjacency[np.ix_(order, order)]
    names = [names[i] for i in order]
    vocabulary = {name: i for i, name in enumerate(node_vocabulary(space))}
    ops = np.empty(len(names), dtype=np.int64)
    for k, name in enumerate(names):
        if name in ZERO_OPERATIONS:
            ops[k] = vocabulary["none"]
            adjacency[k, :] = 0.0
            adjacency[:, k] = 0.0
        elif name in vocabulary:
            ops[k] = vocabulary[name]
        else:
            raise InvalidArchitectureError(
                f"node {name!r} of space {space.name!r} is not an operation; "
                f"operations: {list(vocabulary)}"
            )
    return CellGraph(adjacency=adjacency, ops=ops)


def _topological_order(adjacency: np.ndarray) -> list[int]:
    """Node order with every edge pointing forward; input first and output last kept."""
    n = len(adjacency)
    if not np.any(np.tril(adjacency)):
        return list(range(n))  # already upper triangular, the common case
    indegree = (adjacency != 0).sum(axis=0)
    ready, order = [0], []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for child in np.nonzero(adjacency[node])[0]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(int(child))
    rest = [i for i in range(n) if i not in order]
    if rest and any(indegree[i] for i in rest):
        raise InvalidArchitectureError("a cell graph must be acyclic")
    order = order + [i for i in rest if i != n - 1]
    return [i for i in order if i != n - 1] + [n - 1]


class PathEncoder:
    """BANANAS' path encoding of a graph space (White et al., AAAI 2021, sec. 4).

    The features are every sequence of 1..``max_length`` non-zero operations, shortest first,
    truncated to ``max_paths`` (the paper's truncated path encoding). ``max_length`` defaults
    to the longest input-to-output path of the space's cell skeleton (3 on NAS-Bench-201,
    giving 4 + 16 + 64 = 84 features). Vectors are cached per architecture.
    """

    def __init__(
        self, space: SearchSpace, max_length: int | None = None, max_paths: int = MAX_PATHS
    ) -> None:
        if not has_graph(space):
            raise InvalidArchitectureError(
                f"space {space.name!r} has no cell graph, so no path encoding"
            )
        self.space = space
        self.operations = operations(space)
        self.max_length = max_length if max_length is not None else _skeleton_depth(space)
        paths: list[tuple[str, ...]] = []
        for length in range(1, self.max_length + 1):
            paths.extend(itertools.product(self.operations, repeat=length))
            if len(paths) >= max_paths:
                break
        self.paths = paths[:max_paths]
        self._index = {path: i for i, path in enumerate(self.paths)}
        self._cache: dict[Architecture, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def __call__(self, arch: Architecture) -> np.ndarray:
        vector = self._cache.get(arch)
        if vector is None:
            vector = np.zeros(len(self.paths), dtype=np.float32)
            adjacency, names = self.space.graph(arch)
            for path in live_paths(adjacency, names):
                i = self._index.get(path)
                if i is not None:
                    vector[i] = 1.0
            vector.flags.writeable = False
            self._cache[arch] = vector
        return vector


def live_paths(adjacency: np.ndarray, names: Sequence[str]) -> list[tuple[str, ...]]:
    """Operation sequences of every input-to-output path that avoids zero operations."""
    sink = len(names) - 1
    children = [np.nonzero(row)[0].tolist() for row in np.asarray(adjacency)]
    found: list[tuple[str, ...]] = []

    def walk(node: int, ops: tuple[str, ...]) -> None:
        for child in children[node]:
            if child == sink:
                found.append(ops)
            elif names[child] not in ZERO_OPERATIONS:
                walk(child, (*ops, names[child]))

    walk(0, ())
    return [path for path in found if path]  # an input-output edge without operation: none


def _skeleton_depth(space: SearchSpace, samples: int = 32) -> int:
    """Longest input-to-output path, in operations, over the cell skeletons of samples.

    On spaces whose wiring does not depend on the architecture (NAS-Bench-201) one sample
    decides; otherwise a few seeded samples bound it (paths longer still are not encoded).
    """
    rng = np.random.default_rng(0)
    depth = 0
    for _ in range(samples):
        adjacency, names = space.graph(space.sample(rng))
        adjacency = np.asarray(adjacency)
        n = len(names)
        longest = np.full(n, -np.inf)
        longest[0] = 0
        for node in _topological_order(adjacency):
            for child in np.nonzero(adjacency[node])[0]:
                longest[child] = max(longest[child], longest[node] + 1)
        depth = max(depth, int(longest[n - 1]) - 1)
    return max(depth, 1)


#: one path encoder (vocabulary and cache) per live space object
_PATH_ENCODERS: weakref.WeakKeyDictionary[SearchSpace, PathEncoder] = weakref.WeakKeyDictionary()


def _path_encoder(space: SearchSpace) -> PathEncoder:
    encoder = _PATH_ENCODERS.get(space)
    if encoder is None:
        encoder = _PATH_ENCODERS[space] = PathEncoder(space)
    return encoder


def encode(space: SearchSpace, arch: Architecture, kind: str = "onehot") -> np.ndarray:
    """The ``kind`` encoding of ``arch`` as a float32 vector; known kinds: :data:`ENCODINGS`.

    Graph encodings fall back to ``onehot`` on spaces without a cell graph (see
    :func:`resolve_kind`), so a predictor configured once runs on every space.
    """
    kind = resolve_kind(space, kind)
    if kind == "path":
        return _path_encoder(space)(arch)
    if kind == "adjacency" and "adjacency" not in space.encodings:
        return _generic_adjacency(space, arch)
    return space.encode(arch, kind)


def encode_batch(space: SearchSpace, archs: Iterable[Architecture], kind: str) -> np.ndarray:
    """Encodings of several architectures stacked as rows of a 2-D float32 array."""
    rows = [encode(space, arch, kind) for arch in archs]
    if not rows:
        return np.zeros((0, len(encode(space, space.sample(np.random.default_rng(0)), kind))))
    return np.stack(rows).astype(np.float32, copy=False)


def _generic_adjacency(space: SearchSpace, arch: Architecture) -> np.ndarray:
    """Upper-triangular adjacency and one-hot node labels of any graph space's cell."""
    graph = cell_graph(space, arch)
    n, vocabulary = len(graph.ops), len(node_vocabulary(space))
    ops = np.zeros((n, vocabulary), dtype=np.float32)
    ops[np.arange(n), graph.ops] = 1.0
    return np.concatenate([graph.adjacency[np.triu_indices(n, k=1)], ops.ravel()])
