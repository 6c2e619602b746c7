"""IDX loading on the real MNIST files: counts, pixels, file variants, downloads from file:// mirrors, errors."""
from __future__ import annotations

import gzip
import hashlib
import shutil
import struct

import numpy as np
import pytest
from PIL import Image

from latentspace.data import idx, load

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def raw_image(path, i: int) -> np.ndarray:
    """Image i of an IDX3 gz file, decoded by hand: 16-byte header, then 784 bytes per image."""
    with gzip.open(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert (magic, rows, cols) == (2051, 28, 28) and i < n
        f.seek(16 + i * rows * cols)
        return np.frombuffer(f.read(rows * cols), dtype=np.uint8).reshape(rows, cols)


def raw_label(path, i: int) -> int:
    with gzip.open(path, "rb") as f:
        magic, n = struct.unpack(">II", f.read(8))
        assert magic == 2049 and i < n
        f.seek(8 + i)
        return f.read(1)[0]


def test_counts_and_class_counts(mnist_dir):
    train = idx.load_idx("mnist", split="train", data_dir=mnist_dir)
    test = idx.load_idx("mnist", split="test", data_dir=mnist_dir)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == TRAIN_COUNTS
    assert np.bincount(test.labels).tolist() == TEST_COUNTS
    assert train.class_names == tuple("0123456789") and (train.split, test.split) == ("train", "test")


def test_split_none_is_train_then_test(mnist_dir, mnist_test):
    both = load("mnist", data_dir=mnist_dir)  # through the public entry point
    assert len(both) == 70000 and both.split is None
    np.testing.assert_array_equal(both.images[60000:], mnist_test.images)
    np.testing.assert_array_equal(both.labels[60000:], mnist_test.labels)


def test_pixels_equal_an_independent_decode(mnist_dir, mnist_test):
    train = idx.load_idx("mnist", split="train", data_dir=mnist_dir)
    for i in (0, 1, 12345, 59999):
        np.testing.assert_array_equal(train.images[i, 0], raw_image(mnist_dir / "train-images-idx3-ubyte.gz", i))
        assert train.labels[i] == raw_label(mnist_dir / "train-labels-idx1-ubyte.gz", i)
    for i in (0, 9999):
        np.testing.assert_array_equal(mnist_test.images[i, 0], raw_image(mnist_dir / "t10k-images-idx3-ubyte.gz", i))
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first labels
    assert mnist_test.images.max() == 255 and mnist_test.images.min() == 0


def test_recompressed_and_raw_copies_load_identically(mnist_dir, tmp_path):
    reference = idx.load_idx("mnist", data_dir=mnist_dir)
    recompressed, raw = tmp_path / "gz1", tmp_path / "raw"
    recompressed.mkdir(), raw.mkdir()
    for stem in idx.ALL_FILES:
        data = gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes())
        (raw / stem).write_bytes(data)
        # the other official spelling, train-images.idx3-ubyte, and different gzip bytes (level 1)
        (recompressed / f"{stem.replace('-idx', '.idx')}.gz").write_bytes(gzip.compress(data, compresslevel=1))
    official = (mnist_dir / "train-images-idx3-ubyte.gz").read_bytes()
    assert (recompressed / "train-images.idx3-ubyte.gz").read_bytes() != official
    for folder in (recompressed, raw):
        copy = idx.load_idx("mnist", data_dir=folder)
        np.testing.assert_array_equal(copy.images, reference.images)
        np.testing.assert_array_equal(copy.labels, reference.labels)


def test_resize_and_rgb(mnist_dir, mnist_test):
    small = idx.load_idx("mnist", split="test", data_dir=mnist_dir, size=14, channels=3)
    assert small.images.shape == (10000, 3, 14, 14)
    np.testing.assert_array_equal(small.images[:, 0], small.images[:, 2])
    expected = Image.fromarray(mnist_test.images[7, 0]).resize((14, 14), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(small.images[7, 1], np.asarray(expected))


def mirror_of(mnist_dir, folder, stems=TEST_FILES):
    folder.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        shutil.copyfile(mnist_dir / f"{stem}.gz", folder / f"{stem}.gz")
    return folder


@pytest.fixture
def empty_places(tmp_path, monkeypatch):
    """No local copies anywhere: data_dir is empty, no $LATENTSPACE_DATA, a fresh cache."""
    monkeypatch.delenv("LATENTSPACE_DATA", raising=False)
    monkeypatch.setenv("LATENTSPACE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_download_from_a_mirror_verifies_and_caches(mnist_dir, mnist_test, empty_places):
    good = mirror_of(mnist_dir, empty_places / "mirror")
    unreachable = (empty_places / "nowhere").as_uri()
    got = idx.load_idx("mnist", split="test", data_dir=empty_places / "empty", mirrors=[unreachable, good.as_uri()])
    np.testing.assert_array_equal(got.images, mnist_test.images)
    cached = sorted(p.name for p in (empty_places / "cache" / "mnist").iterdir())
    assert cached == sorted(f"{s}.gz" for s in TEST_FILES)
    again = idx.load_idx("mnist", split="test", mirrors=[])  # from the cache, no download needed
    np.testing.assert_array_equal(again.labels, mnist_test.labels)


def test_download_checksum_mismatch_deletes_and_names_the_file(mnist_dir, empty_places):
    bad = mirror_of(mnist_dir, empty_places / "mirror")
    data = bytearray((bad / "t10k-labels-idx1-ubyte.gz").read_bytes())
    data[100] ^= 0xFF  # one flipped bit pattern: same length, different MD5
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: checksum mismatch") as info:
        idx.load_idx("mnist", split="test", data_dir=empty_places / "empty", mirrors=[bad.as_uri()])
    assert "ec29112dd5afa0611ce80d1b7f02629c" in str(info.value)
    assert hashlib.md5(bytes(data)).hexdigest() in str(info.value)
    assert sorted(p.name for p in (empty_places / "cache" / "mnist").iterdir()) == ["t10k-images-idx3-ubyte.gz"]


def test_offline_error_names_the_four_files_and_where_to_put_them(empty_places):
    for mirrors in ([(empty_places / "nowhere").as_uri()], None):  # None: the (emptied) module table
        with pytest.raises(FileNotFoundError) as info:
            idx.load_idx("mnist", data_dir=empty_places / "empty", mirrors=mirrors)
        message = str(info.value)
        assert "\n" not in message
        for stem in idx.ALL_FILES:
            assert f"{stem}.gz" in message
        assert str(empty_places / "empty") in message and str(empty_places / "cache" / "mnist") in message
        assert "LATENTSPACE_DATA" in message


def write_idx(path, magic: int, dims: tuple[int, ...], payload: bytes, compress: bool = True) -> None:
    data = struct.pack(f">I{len(dims)}I", magic, *dims) + payload
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize(
    "images, labels, message",
    [
        ((2049, (3, 28, 28), bytes(3 * 784)), (2049, (3,), bytes(3)), "bad IDX magic number 2049, expected 2051"),
        ((2051, (3, 28, 28), bytes(2 * 784)), (2049, (3,), bytes(3)), "truncated"),
        ((2051, (3, 28, 28), bytes(3 * 784 + 5)), (2049, (3,), bytes(3)), "trailing bytes"),
        ((2051, (3, 28, 28), bytes(3 * 784)), (2049, (2,), bytes(2)), "2 labels but t10k-images"),
        ((2051, (3, 28, 28), bytes(3 * 784)), (2049, (3,), bytes([1, 10, 2])), "label 10 out of range"),
        ((2051, (3, 32, 32), bytes(3 * 1024)), (2049, (3,), bytes(3)), "expected 28x28"),
    ],
)
def test_structural_errors_name_the_file(tmp_path, images, labels, message):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", *images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", *labels, compress=False)
    with pytest.raises(ValueError, match=message) as info:
        idx.load_idx("mnist", split="test", data_dir=tmp_path)
    assert str(tmp_path / "t10k-") in str(info.value)


def test_truncated_gzip_names_the_file(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 2051, (3, 28, 28), np.random.default_rng(0).bytes(3 * 784))
    whole = (tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, (3,), bytes(3))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: broken gzip file"):
        idx.load_idx("mnist", split="test", data_dir=tmp_path)


def test_small_valid_files_and_class_names(tmp_path):
    pixels = np.arange(2 * 784, dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 2051, (2, 28, 28), pixels.tobytes())
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, (2,), bytes([9, 0]))
    fashion = idx.load_idx("fashion-mnist", split="test", data_dir=tmp_path)
    np.testing.assert_array_equal(fashion.images.reshape(-1), pixels)
    assert [fashion.class_names[i] for i in fashion.labels] == ["Ankle boot", "T-shirt/top"]
    kmnist = idx.load_idx("kmnist", split="test", data_dir=tmp_path)
    assert [kmnist.class_names[i] for i in kmnist.labels] == ["wo", "o"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown IDX dataset 'emnist'"):
        idx.load_idx("emnist")
    with pytest.raises(ValueError, match="split must be"):
        idx.load_idx("mnist", split="val")
    with pytest.raises(ValueError, match="channels must be 1"):
        idx.load_idx("mnist", channels=2)
