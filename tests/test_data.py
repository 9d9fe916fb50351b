"""Datasets: IDX parsing, the built-in loaders, user data and the train/valid split."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.data import (
    DATASETS,
    FASHION_MNIST_DIR,
    describe,
    from_dataset,
    from_tensors,
    load_dataset,
    parse_idx,
    read_idx,
    split_train_valid,
    take,
    write_idx,
)
from archsearch.errors import ArchsearchError, DataError, UnknownComponentError

FMNIST = Path(FASHION_MNIST_DIR)
FMNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """A hand-written IDX encoding, independent of write_idx."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def fake_fashion_mnist(directory: Path, n_train: int = 40, n_test: int = 10) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.arange(n_test, dtype=np.uint8) % 10,
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        (directory / name).write_bytes(gzip.compress(idx_bytes(array)))
    return directory


# ------------------------------------------------------------------ IDX
def test_parse_idx_reads_the_header_shape_and_big_endian_elements():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(idx_bytes(images)), images)
    ints = np.array([1, -2, 70000], dtype=np.int32)
    parsed = parse_idx(idx_bytes(ints, code=0x0C))
    assert parsed.dtype == np.int32 and parsed.dtype.isnative and list(parsed) == [1, -2, 70000]


def test_read_idx_reads_gzip_and_plain_files_and_write_idx_round_trips(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (tmp_path / "plain").write_bytes(idx_bytes(labels))
    (tmp_path / "packed.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    write_idx(tmp_path / "written.gz", labels)
    for name in ("plain", "packed.gz", "written.gz"):
        assert np.array_equal(read_idx(tmp_path / name), labels)


def test_parsed_arrays_are_read_only_because_they_are_cached_and_shared(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros(3, dtype=np.uint8))
    first = read_idx(tmp_path / "a.gz")
    assert read_idx(tmp_path / "a.gz") is first  # the cache serves the same array
    with pytest.raises(ValueError):
        first[0] = 1


def test_a_rewritten_file_is_read_again_not_served_from_the_cache(tmp_path):
    path = tmp_path / "a.gz"
    write_idx(path, np.zeros(3, dtype=np.uint8))
    read_idx(path)
    write_idx(path, np.ones(4, dtype=np.uint8))
    assert list(read_idx(path)) == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00\x00", "no 4-byte header"),
        (b"\x12\x34\x08\x01" + b"\x00" * 8, "bad IDX magic number 0x12340801"),
        (b"\x00\x00\x07\x01" + b"\x00" * 8, "bad IDX magic number 0x00000701"),
        (b"\x00\x00\x08\x00", "bad IDX magic number"),
        (b"\x00\x00\x08\x03\x00\x00", "header of a 3-dimensional array"),
        (idx_bytes(np.zeros((4, 5), dtype=np.uint8))[:-3], "truncated IDX file"),
        (idx_bytes(np.zeros((4, 5), dtype=np.uint8)) + b"\x00", "trailing bytes"),
    ],
)
def test_corrupt_idx_data_fails_with_data_error_naming_the_file(tmp_path, raw, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_a_truncated_gzip_file_fails_with_data_error(tmp_path):
    packed = gzip.compress(idx_bytes(np.zeros((50, 28, 28), dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match="cut.gz: corrupt or truncated gzip"):
        read_idx(path)


def test_a_missing_idx_file_fails_with_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nothing.gz")


# ------------------------------------------------------------------ Fashion-MNIST
def test_fashion_mnist_loads_from_a_configurable_directory(tmp_path):
    data = load_dataset("fashion-mnist", str(fake_fashion_mnist(tmp_path / "fm")))
    assert data.name == "fashion-mnist" and data.num_classes == 10
    assert data.x_train.shape == (40, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    # standardised with the training statistics
    assert abs(float(data.x_train.mean())) < 1e-4 and abs(float(data.x_train.std()) - 1) < 1e-2
    assert len(data.mean) == len(data.std) == 1 and 0.4 < data.mean[0] < 0.6


def test_fashion_mnist_in_a_missing_directory_says_where_to_get_it(tmp_path):
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist", str(tmp_path / "absent"))


def test_fashion_mnist_with_a_missing_file_names_the_file(tmp_path):
    directory = fake_fashion_mnist(tmp_path / "fm")
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion-mnist", str(directory))


def test_fashion_mnist_with_labels_not_matching_images_fails(tmp_path):
    directory = fake_fashion_mnist(tmp_path / "fm")
    write_idx(directory / "train-labels-idx1-ubyte.gz", np.zeros(39, dtype=np.uint8))
    with pytest.raises(DataError, match="40 images but labels of shape"):
        load_dataset("fashion-mnist", str(directory))


@pytest.mark.skipif(
    not all((FMNIST / f).is_file() for f in FMNIST_FILES), reason="no Fashion-MNIST"
)
def test_the_real_fashion_mnist_has_60000_training_and_10000_test_images():
    data = load_dataset("fashion-mnist")
    assert data.x_train.shape == (60_000, 1, 28, 28) and data.x_test.shape == (10_000, 1, 28, 28)
    assert torch.bincount(data.y_train).tolist() == [6_000] * 10
    assert torch.bincount(data.y_test).tolist() == [1_000] * 10
    assert data.mean[0] == pytest.approx(0.2860, abs=1e-4)
    assert data.std[0] == pytest.approx(0.3530, abs=1e-4)


# ------------------------------------------------------------------ digits, registry
def test_digits_is_a_fixed_1437_360_split_of_scikit_learns_digits():
    data = load_dataset("digits")
    again = load_dataset("digits")
    assert data.x_train.shape == (1437, 1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    assert torch.equal(data.y_test, again.y_test) and torch.equal(data.x_train, again.x_train)
    assert describe(data) == "digits (1x8x8, 10 classes; train 1,437, test 360)"


def test_digits_refuses_a_data_dir_it_would_ignore():
    with pytest.raises(DataError, match="takes no data_dir"):
        load_dataset("digits", "/tmp")


def test_an_unknown_dataset_lists_the_known_ones():
    assert {"fashion-mnist", "digits"} <= set(DATASETS.names())
    with pytest.raises(UnknownComponentError, match="digits, fashion-mnist"):
        load_dataset("cifar10")


# ------------------------------------------------------------------ user data
def test_from_tensors_scales_uint8_adds_a_channel_and_normalises_with_training_statistics():
    x_train = torch.randint(0, 256, (20, 6, 6), dtype=torch.uint8)
    x_test = torch.full((5, 6, 6), 255, dtype=torch.uint8)
    y_train = torch.arange(20) % 3
    data = from_tensors(x_train, y_train, x_test, torch.zeros(5, dtype=torch.int32))
    assert data.input_shape == (1, 6, 6) and data.num_classes == 3 and data.name == "custom"
    expected = (1.0 - data.mean[0]) / data.std[0]  # test images use the training statistics
    assert torch.allclose(data.x_test, torch.full_like(data.x_test, expected))
    assert data.y_test.dtype == torch.int64


def test_from_tensors_takes_numpy_arrays_and_keeps_values_without_normalisation():
    x = np.random.default_rng(0).normal(size=(8, 3, 4, 4)).astype(np.float64)
    data = from_tensors(x, np.arange(8) % 2, name="mine", normalise_inputs=False)
    assert torch.allclose(data.x_train, torch.from_numpy(x).float())
    assert data.x_test is None and data.mean == (0.0,) * 3 and data.std == (1.0,) * 3


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (torch.zeros(4, 1, 2, 2), torch.zeros(3), "3 labels for 4 images"),
        (torch.zeros(4, 1, 2, 2), torch.tensor([0.5, 1, 0, 1]), "integer class indices"),
        (torch.full((4, 1, 2, 2), float("nan")), torch.zeros(4), "NaN or infinite"),
        (torch.zeros(4), torch.zeros(4), "N x C x H x W"),
        (torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, -1, 0]), "outside"),
    ],
)
def test_from_tensors_rejects_malformed_data(x, y, message):
    with pytest.raises(DataError, match=message):
        from_tensors(x, y)


def test_from_tensors_refuses_a_test_set_without_labels():
    with pytest.raises(DataError, match="both x_test and y_test"):
        from_tensors(torch.zeros(4, 1, 2, 2), torch.zeros(4), x_test=torch.zeros(2, 1, 2, 2))


def test_from_dataset_reads_a_torch_dataset_into_memory():
    x = torch.rand(12, 1, 5, 5)
    y = torch.arange(12) % 4
    data = from_dataset(torch.utils.data.TensorDataset(x, y), name="td", normalise_inputs=False)
    assert torch.equal(data.x_train, x) and torch.equal(data.y_train, y)
    assert data.num_classes == 4 and data.name == "td"


def test_from_dataset_rejects_items_that_are_not_pairs():
    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return torch.zeros(1, 2, 2)

    with pytest.raises(DataError, match="must be an \\(image, label\\) pair"):
        from_dataset(Images())


# ------------------------------------------------------------------ splits
def _numbered(n: int = 100):
    """Images whose single pixel is their index, so splits can be traced back."""
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    test = torch.full((10, 1, 1, 1), -1.0)
    return from_tensors(x, torch.arange(n) % 5, test, torch.zeros(10), normalise_inputs=False)


def test_the_validation_split_is_carved_from_training_and_is_disjoint_from_it():
    data = _numbered()
    split = split_train_valid(data, 20, seed=3)
    train = set(split.x_train.flatten().tolist())
    valid = set(split.x_valid.flatten().tolist())
    assert len(valid) == 20 and len(train) == 80
    assert not train & valid and train | valid == set(range(100))
    assert torch.equal(split.x_test, data.x_test)  # the test set passes through untouched
    assert torch.equal(split.y_train, (split.x_train.flatten().long()) % 5)  # labels follow


def test_the_split_is_deterministic_given_the_seed_and_differs_across_seeds():
    data = _numbered()
    a, b = split_train_valid(data, 0.25, seed=1), split_train_valid(data, 0.25, seed=1)
    c = split_train_valid(data, 0.25, seed=2)
    assert torch.equal(a.x_valid, b.x_valid) and torch.equal(a.x_train, b.x_train)
    assert len(a.y_valid) == 25 and not torch.equal(a.x_valid, c.x_valid)


@pytest.mark.parametrize("size", [0, 100, 1.5, -0.1, "10"])
def test_a_split_that_leaves_a_set_empty_or_is_not_a_size_fails(size):
    with pytest.raises(ArchsearchError, match="valid_size"):
        split_train_valid(_numbered(), size)


def test_take_keeps_at_most_size_examples():
    x, y = torch.arange(10).view(10, 1), torch.arange(10)
    assert take(x, y, None)[1].tolist() == list(range(10))
    assert take(x, y, 50)[1].tolist() == list(range(10))
    assert take(x, y, 3)[1].tolist() == [0, 1, 2]
    subset = take(x, y, 4, seed=0)[1]
    assert len(set(subset.tolist())) == 4 and torch.equal(subset, take(x, y, 4, seed=0)[1])
