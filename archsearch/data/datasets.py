"""Built-in datasets. Nothing is downloaded: each reads files already on the machine.

* ``fashion-mnist`` (Xiao et al., 2017): 60,000/10,000 28x28 grey images, 10 classes, from
  the four standard IDX files (Debian package ``dataset-fashion-mnist`` installs them in
  :data:`FASHION_MNIST_DIR`).
* ``digits``: scikit-learn's 1,797 8x8 handwritten digits, shipped inside scikit-learn; for
  tests and examples that must train in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from archsearch.data.base import DATASETS, ImageData, normalise
from archsearch.data.idx import read_idx
from archsearch.errors import DataError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

DIGITS_TEST_SIZE = 360
DIGITS_SPLIT_SEED = 0


def _idx_file(directory: Path, stem: str) -> Path:
    """``stem.gz`` if present, else the uncompressed ``stem``; an error names both."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"Fashion-MNIST file {directory / stem}.gz (or {stem}) not found")


@DATASETS.register("fashion-mnist")
def fashion_mnist(data_dir: str | None = None) -> ImageData:
    """Fashion-MNIST from the IDX files in ``data_dir`` (default :data:`FASHION_MNIST_DIR`).

    Pixels are scaled to [0, 1], then standardised with the mean and std of the 60,000
    training images (about 0.286 and 0.353).
    """
    directory = Path(data_dir if data_dir is not None else FASHION_MNIST_DIR).expanduser()
    if not directory.is_dir():
        files = ", ".join(f"{f}.gz" for f in FASHION_MNIST_FILES.values())
        raise DataError(
            f"Fashion-MNIST directory {directory} does not exist: install the Debian package "
            f"dataset-fashion-mnist or pass data_dir= a directory holding {files}"
        )
    arrays = {
        key: read_idx(_idx_file(directory, stem)) for key, stem in FASHION_MNIST_FILES.items()
    }
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        where = directory / FASHION_MNIST_FILES[f"x_{split}"]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise DataError(f"{where}: expected N x 28 x 28 uint8 images, got {x.shape} {x.dtype}")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{where}: {len(x)} images but labels of shape {y.shape}")
        if y.dtype != np.uint8 or (len(y) and int(y.max()) >= 10):
            raise DataError(f"{where}: labels must be uint8 classes 0..9")
    x_train = _pixels(arrays["x_train"])
    x_train, mean, std = normalise(x_train)
    x_test, _, _ = normalise(_pixels(arrays["x_test"]), mean, std)
    return ImageData(
        name="fashion-mnist",
        x_train=x_train,
        y_train=torch.from_numpy(arrays["y_train"].astype(np.int64)),
        x_test=x_test,
        y_test=torch.from_numpy(arrays["y_test"].astype(np.int64)),
        num_classes=10,
        mean=mean,
        std=std,
    )


def _pixels(images: np.ndarray) -> torch.Tensor:
    """``N x H x W`` uint8 -> ``N x 1 x H x W`` float32 in [0, 1] (a fresh, writable copy)."""
    return torch.from_numpy(images.astype(np.float32)).div_(255.0).unsqueeze(1)


@DATASETS.register("digits")
def digits(data_dir: str | None = None) -> ImageData:
    """scikit-learn's 8x8 digits: 1,437 training and 360 test images (a fixed seeded split).

    Pixels (0..16) are scaled to [0, 1], then standardised with the training mean and std.
    The data ships inside scikit-learn, so ``data_dir`` must stay ``None``.
    """
    if data_dir is not None:
        raise DataError(
            f"dataset 'digits' ships with scikit-learn and takes no data_dir, got {data_dir!r}"
        )
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    test, train = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
    x_train, mean, std = normalise(images[train])
    x_test, _, _ = normalise(images[test], mean, std)
    return ImageData(
        name="digits",
        x_train=x_train,
        y_train=labels[train],
        x_test=x_test,
        y_test=labels[test],
        num_classes=10,
        mean=mean,
        std=std,
    )
