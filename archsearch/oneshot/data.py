"""The data split of a one-shot search, named by a small recipe that checkpoints store.

One-shot methods train weights on ``train`` and choose architectures on ``valid``; both come
out of the dataset's training set (:func:`archsearch.data.split_train_valid`), so the test
set stays untouched for reporting.
"""

from __future__ import annotations

from dataclasses import replace

from archsearch.data import load_dataset, split_train_valid, take
from archsearch.data.base import ImageData


def load_search_data(
    dataset: str,
    data_dir: str | None = None,
    valid_size: int | float = 0.5,
    train_size: int | None = None,
    seed: int = 0,
) -> ImageData:
    """``dataset`` split into ``valid_size`` validation and (at most) ``train_size``
    training examples, by a permutation seeded with ``seed``.

    The default halves the training set, as DARTS does to learn the weights and the
    architecture on different data.
    """
    data = split_train_valid(load_dataset(dataset, data_dir), valid_size, seed)
    x, y = take(data.x_train, data.y_train, train_size)  # a prefix of a seeded permutation
    return replace(data, x_train=x, y_train=y)


def recipe(
    dataset: str,
    data_dir: str | None = None,
    valid_size: int | float = 0.5,
    train_size: int | None = None,
    seed: int = 0,
) -> dict[str, object]:
    """The arguments of :func:`load_search_data` as a dict (stored with a supernet)."""
    return {
        "dataset": dataset,
        "data_dir": data_dir,
        "valid_size": valid_size,
        "train_size": train_size,
        "seed": seed,
    }
