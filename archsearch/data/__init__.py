"""Datasets held in memory as normalised tensors, and the train/valid/test splits of a search.

Built-in datasets are registered by name in :data:`DATASETS` (``fashion-mnist``, ``digits``);
your own data comes in through :func:`from_tensors` or :func:`from_dataset`.
"""

from archsearch.data import datasets as _datasets  # noqa: F401  (registers the built-ins)
from archsearch.data.base import (
    DATASETS,
    ImageData,
    describe,
    from_dataset,
    from_tensors,
    load_dataset,
    normalise,
    split_train_valid,
    take,
)
from archsearch.data.datasets import FASHION_MNIST_DIR
from archsearch.data.idx import parse_idx, read_idx, write_idx

__all__ = [
    "DATASETS",
    "FASHION_MNIST_DIR",
    "ImageData",
    "describe",
    "from_dataset",
    "from_tensors",
    "load_dataset",
    "normalise",
    "parse_idx",
    "read_idx",
    "split_train_valid",
    "take",
    "write_idx",
]
