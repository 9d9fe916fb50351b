"""Image classification data held in memory, and the splits a search needs.

A search optimises validation accuracy and reports test accuracy, never the reverse (the
NAS-Bench-201 protocol): :func:`split_train_valid` therefore carves the validation set out
of the *training* set, and the test set is only ever read to report.

All tensors of an :class:`ImageData` are already normalised ``float32`` images (``N x C x H
x W``) with ``int64`` labels, so that training indexes them directly with no loader between.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from archsearch.errors import DataError
from archsearch.registry import Registry

#: dataset loaders by name; each is called as ``loader(data_dir=None) -> ImageData``
DATASETS: Registry[Callable[..., ImageData]] = Registry("dataset")


@dataclass(frozen=True, eq=False)
class ImageData:
    """Train, optional validation and optional test tensors of one classification task.

    ``mean`` and ``std`` (one value per channel) are what was subtracted and divided to
    normalise the raw inputs (pixels in [0, 1] for the built-in datasets); an exported model
    prepends them so that it takes raw inputs.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    num_classes: int
    x_valid: torch.Tensor | None = None
    y_valid: torch.Tensor | None = None
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise DataError(f"{self.name}: need at least 2 classes, got {self.num_classes}")
        shape = tuple(self.x_train.shape[1:])
        for split in ("train", "valid", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if (x is None) != (y is None):
                raise DataError(f"{self.name}: {split} images and labels must be given together")
            if x is None:
                continue
            if x.dtype != torch.float32 or y.dtype != torch.int64 or y.ndim != 1:
                raise DataError(
                    f"{self.name}: {split} split must be float32 images and 1-d int64 labels,"
                    f" got {x.dtype} {tuple(x.shape)} and {y.dtype} {tuple(y.shape)}"
                )
            if len(x) != len(y):
                raise DataError(f"{self.name}: {len(x)} {split} images but {len(y)} labels")
            if tuple(x.shape[1:]) != shape:
                raise DataError(
                    f"{self.name}: {split} images have shape {tuple(x.shape[1:])}, train {shape}"
                )
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise DataError(
                    f"{self.name}: {split} labels span {int(y.min())}..{int(y.max())}, outside "
                    f"0..{self.num_classes - 1}"
                )
        if len(self.x_train) == 0:
            raise DataError(f"{self.name}: the training set is empty")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. ``(1, 28, 28)``."""
        return tuple(self.x_train.shape[1:])

    def sizes(self) -> dict[str, int]:
        """Number of examples per split (0 for a missing one)."""
        return {
            split: 0 if getattr(self, f"y_{split}") is None else len(getattr(self, f"y_{split}"))
            for split in ("train", "valid", "test")
        }

    def to(self, device: torch.device | str) -> ImageData:
        """A copy with every tensor on ``device`` (no copy for tensors already there)."""
        moved = {
            field: getattr(self, field).to(device)
            for field in ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test")
            if getattr(self, field) is not None
        }
        return replace(self, **moved)


def load_dataset(name: str, data_dir: str | None = None) -> ImageData:
    """The registered dataset ``name`` (see :data:`DATASETS`), read from ``data_dir``."""
    return DATASETS.get(name)(data_dir=data_dir)


# ------------------------------------------------------------------ normalisation
def normalise(
    x: torch.Tensor, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> tuple[torch.Tensor, tuple[float, ...], tuple[float, ...]]:
    """``(x - mean) / std`` per channel (dimension 1), in place, with the statistics used.

    Without ``mean``/``std`` they are measured on ``x`` (pass the training images, never the
    test images). A constant channel gets std 1 instead of a division by zero.
    """
    dims = [d for d in range(x.ndim) if d != 1] if x.ndim >= 2 else [0]
    channels = x.shape[1] if x.ndim >= 2 else 1
    if mean is None or std is None:
        # float32 with torch's cascade summation: exact to ~1e-7 without a float64 copy
        var, avg = torch.var_mean(x, dim=dims)
        mean = tuple(float(v) for v in avg.reshape(-1))
        std = tuple(float(v) ** 0.5 if v > 0 else 1.0 for v in var.reshape(-1))
    if len(mean) != channels or len(std) != channels:
        raise DataError(f"need {channels} mean and std values, got {len(mean)} and {len(std)}")
    view = [1, channels] + [1] * (x.ndim - 2) if x.ndim >= 2 else [1]
    x.sub_(torch.tensor(mean, dtype=x.dtype).view(view))
    x.div_(torch.tensor(std, dtype=x.dtype).view(view))
    return x, tuple(mean), tuple(std)


# ------------------------------------------------------------------ user data
def _as_images(x: Any, what: str) -> torch.Tensor:
    """A float32 copy of ``x``: uint8 scaled to [0, 1]; ``N x H x W`` given one channel."""
    try:
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"{what}: cannot turn {type(x).__name__} into a tensor ({exc})") from None
    if t.ndim < 2:
        raise DataError(f"{what} must be N x C x H x W (or N x H x W), got shape {tuple(t.shape)}")
    if not (t.dtype.is_floating_point or t.dtype in (torch.uint8, torch.int64, torch.int32)):
        raise DataError(f"{what} must hold numbers, got {t.dtype}")
    scale = 255.0 if t.dtype == torch.uint8 else 1.0
    t = t.detach().to("cpu", torch.float32, copy=True)
    if scale != 1.0:
        t.div_(scale)
    if t.ndim == 3:
        t = t.unsqueeze(1)
    if not torch.isfinite(t).all():
        raise DataError(f"{what} contain NaN or infinite values")
    return t


def _as_labels(y: Any, n: int, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if t.dtype.is_floating_point:
        if not torch.equal(t, t.round()):
            raise DataError(f"{what} must be integer class indices, got non-integer values")
    elif t.dtype == torch.bool or t.dtype.is_complex:
        raise DataError(f"{what} must be integer class indices, got {t.dtype}")
    t = t.detach().to("cpu", torch.int64).reshape(-1)
    if len(t) != n:
        raise DataError(f"{what}: {len(t)} labels for {n} images")
    return t


def from_tensors(
    x_train: Any,
    y_train: Any,
    x_test: Any = None,
    y_test: Any = None,
    name: str = "custom",
    num_classes: int | None = None,
    normalise_inputs: bool = True,
) -> ImageData:
    """Your own images and labels (tensors or arrays) as an :class:`ImageData`.

    Images are ``N x C x H x W`` (``N x H x W`` is read as one channel); ``uint8`` images are
    scaled to [0, 1], other types are taken as they are. With ``normalise_inputs``, each
    channel is standardised with the mean and std of the *training* images. ``num_classes``
    defaults to one more than the largest label. The test set is optional; without one, an
    evaluator reports no test accuracy.
    """
    if (x_test is None) != (y_test is None):
        raise DataError(f"{name}: give both x_test and y_test, or neither")
    xt = _as_images(x_train, f"{name} training images")
    yt = _as_labels(y_train, len(xt), f"{name} training labels")
    xs = ys = None
    if x_test is not None:
        xs = _as_images(x_test, f"{name} test images")
        ys = _as_labels(y_test, len(xs), f"{name} test labels")
    if num_classes is None:
        largest = [int(y.max()) for y in (yt, ys) if y is not None and len(y)]
        num_classes = 1 + max(largest, default=0)
    mean: tuple[float, ...] = (0.0,) * xt.shape[1]
    std: tuple[float, ...] = (1.0,) * xt.shape[1]
    if normalise_inputs:
        xt, mean, std = normalise(xt)
        if xs is not None:
            normalise(xs, mean, std)
    return ImageData(
        name=name, x_train=xt, y_train=yt, x_test=xs, y_test=ys, num_classes=int(num_classes),
        mean=mean, std=std,
    )  # fmt: skip


def _stack(dataset: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        n = len(dataset)
    except TypeError:
        raise DataError(f"{what}: a map-style Dataset with a length is needed") from None
    if n == 0:
        raise DataError(f"{what} is empty")
    images, labels = [], []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, Sequence) or len(item) < 2:
            raise DataError(
                f"{what}[{i}] must be an (image, label) pair, got {type(item).__name__}"
            )
        x, y = item[0], item[1]
        images.append(x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x)))
        labels.append(int(y))
    try:
        return torch.stack(images), torch.tensor(labels, dtype=torch.int64)
    except RuntimeError as exc:
        raise DataError(f"{what}: images differ in shape or type ({exc})") from None


def from_dataset(
    train: torch.utils.data.Dataset,
    test: torch.utils.data.Dataset | None = None,
    name: str = "custom",
    num_classes: int | None = None,
    normalise_inputs: bool = True,
) -> ImageData:
    """A map-style ``torch.utils.data.Dataset`` of ``(image, label)`` pairs, read into memory.

    Every item is read once, so transforms run once: random augmentation in the dataset
    would be frozen, which is why a search should get the un-augmented data. The images
    then follow the rules of :func:`from_tensors`.
    """
    x_train, y_train = _stack(train, f"{name} training dataset")
    x_test = y_test = None
    if test is not None:
        x_test, y_test = _stack(test, f"{name} test dataset")
    return from_tensors(
        x_train, y_train, x_test, y_test, name=name, num_classes=num_classes,
        normalise_inputs=normalise_inputs,
    )  # fmt: skip


# ------------------------------------------------------------------ splits
def _count(size: int | float, total: int, what: str) -> int:
    """``size`` as a number of examples: an int is a count, a float in (0, 1) a fraction."""
    if isinstance(size, bool) or not isinstance(size, int | float):
        raise DataError(f"{what} must be a count or a fraction in (0, 1), got {size!r}")
    if isinstance(size, float) and (not size.is_integer() or size <= 1.0):
        if not 0.0 < size < 1.0:  # 1.0 would be every example, or read as a count, one
            raise DataError(f"{what} as a fraction must be in (0, 1), got {size}")
        return max(1, round(size * total))
    return int(size)


def split_train_valid(data: ImageData, valid_size: int | float, seed: int = 0) -> ImageData:
    """Carve a validation set of ``valid_size`` examples out of the training set.

    ``valid_size`` is a count or a fraction in (0, 1) of the training set. The split is a
    seeded permutation, so the same seed gives the same split on every machine, and the
    validation examples are removed from training (the two are disjoint). The test set is
    passed through untouched. The remaining training examples keep the permutation's order,
    so that a prefix of them is a random subset (see :func:`take`).
    """
    n = len(data.y_train)
    count = _count(valid_size, n, "valid_size")
    if not 0 < count < n:
        raise DataError(
            f"valid_size {valid_size!r} must leave both sets non-empty: {data.name} has {n} "
            "training examples"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    valid, train = order[:count], order[count:]
    return replace(
        data,
        x_train=data.x_train[train], y_train=data.y_train[train],
        x_valid=data.x_train[valid], y_valid=data.y_train[valid],
    )  # fmt: skip


def take(
    x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``size`` examples: the first ones, or a seeded random subset given ``seed``.

    ``None`` (or a size beyond the data) keeps everything.
    """
    if size is None or size >= len(y):
        return x, y
    if size <= 0:
        raise DataError(f"a subset size must be positive, got {size}")
    if seed is None:
        return x[:size], y[:size]
    keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(seed)))[:size]
    return x[keep], y[keep]


def describe(data: ImageData) -> str:
    """One line: name, shape, classes and split sizes, for logs and reports."""
    sizes = ", ".join(f"{k} {v:,}" for k, v in data.sizes().items() if v)
    shape = "x".join(str(d) for d in data.input_shape)
    return f"{data.name} ({shape}, {data.num_classes} classes; {sizes})"
