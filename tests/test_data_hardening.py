"""Issue 11, data layer: the folder cache key, 16-bit images, attributes.csv errors, non-regular files,
interrupted and concurrent cache builds, IDX gzip bombs, and folder loads that stay memory-mapped."""
from __future__ import annotations

import gzip
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from latentspace.data import cache_files, folder_cache, idx, load
from latentspace.data.decode import ImageDecodeError, decode_image
from latentspace.data.folder import load_folder, load_folder_report
from latentspace.data.resize import to_rgb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSPACE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def solid(path, colour, size=(6, 4), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)
    return path


def in_thread(fn, timeout=60):
    """fn()'s result (or exception), or a test failure, not a hang, when it has not returned in ``timeout`` s."""
    box = {}

    def run():
        try:
            box["out"] = fn()
        except Exception as e:  # handed to the test thread, which re-raises it
            box["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), f"still running after {timeout} s"
    if "error" in box:
        raise box["error"]
    return box["out"]


# 1. The cache key --------------------------------------------------------------------------------------------


def test_folders_that_agree_on_names_sizes_and_times_load_their_own_pixels(tmp_path, cache):
    a = solid(tmp_path / "one/data/x.bmp", (200, 0, 0))  # BMP: the same size in bytes whatever the colour
    b = solid(tmp_path / "two/data/x.bmp", (0, 0, 200))
    for p in (a, b):
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    assert a.stat().st_size == b.stat().st_size and a.stat().st_mtime_ns == b.stat().st_mtime_ns
    first, second = load_folder(tmp_path / "one/data", size=4), load_folder(tmp_path / "two/data", size=4)
    assert first.names == second.names == ("x.bmp",) and first.name == second.name == "data"
    assert first.images[0, :, 0, 0].tolist() == [200, 0, 0]
    assert second.images[0, :, 0, 0].tolist() == [0, 0, 200]


def test_an_edit_that_restores_size_and_mtime_invalidates_the_cache(tmp_path, cache):
    path = solid(tmp_path / "d/x.bmp", (10, 10, 10))
    before = path.stat()
    assert load_folder(tmp_path / "d", size=4).images[0, 0, 0, 0] == 10
    time.sleep(0.01)  # a later ctime, on filesystems with coarse clocks too
    with open(path, "r+b") as f:  # in place: same inode, same size; then the old mtime put back
        f.write(solid(tmp_path / "other.bmp", (90, 90, 90)).read_bytes())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert load_folder(tmp_path / "d", size=4).images[0, 0, 0, 0] == 90


# 2. 16-bit and float images ------------------------------------------------------------------------------------


def test_a_16_bit_grey_gradient_loads_as_the_8_bit_gradient(tmp_path, cache):
    ramp = np.arange(256, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(ramp * 257).save(tmp_path / "g16.png")  # 0, 257, ..., 65535: mode I;16
    Image.fromarray(ramp.astype(np.uint8)).save(tmp_path / "g8.png")
    with Image.open(tmp_path / "g16.png") as img:
        assert img.mode == "I;16"
    ds = load_folder(tmp_path, size=16)
    assert ds.names == ("g16.png", "g8.png") and ds.images.shape == (2, 1, 16, 16)
    np.testing.assert_array_equal(ds.images[0, 0], ramp)
    np.testing.assert_array_equal(ds.images[0], ds.images[1])


@pytest.mark.parametrize("mode, dtype", [("I;16", "<u2"), ("I;16B", ">u2"), ("I", "<i4")])
def test_every_wide_grey_mode_keeps_the_top_byte(mode, dtype):
    values = np.array([[0, 255, 256, 32768, 65280, 65535]], dtype=dtype)
    rgb = np.asarray(to_rgb(Image.frombytes(mode, (6, 1), values.tobytes())))
    assert rgb[0, :, 0].tolist() == [0, 0, 1, 128, 255, 255] and (rgb == rgb[..., :1]).all()


def test_float_pixels_and_other_formats_are_skipped_with_a_reason(tmp_path, cache):
    with pytest.raises(ValueError, match=r"^float pixels \(mode F\) have no agreed 0..255 scale; save as 8 or 16 bit$"):
        to_rgb(Image.new("F", (2, 2), 0.5))
    solid(tmp_path / "d/ok.png", (1, 2, 3))
    Image.new("F", (4, 4), 0.5).save(tmp_path / "d/float.png", format="TIFF")  # a TIFF named .png
    ds, report = load_folder_report(tmp_path / "d", size=4)
    assert ds.names == ("ok.png",) and report.skipped == (("float.png", "cannot identify image"),)
    with pytest.raises(ImageDecodeError, match=r"float.png: cannot identify image$") as info:
        decode_image(tmp_path / "d/float.png", 4)
    assert isinstance(info.value, ValueError) and info.value.reason == "cannot identify image"


# 3. attributes.csv -----------------------------------------------------------------------------------------------


@pytest.fixture
def three(tmp_path, cache):
    for i in range(3):
        solid(tmp_path / "d" / f"{i}.png", (i, i, i))
    return tmp_path / "d"


def csv_error(folder, text: str | bytes) -> str:
    path = folder / "attributes.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError) as info:
        load_folder_report(folder)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message[len(f"{path}: "):]


def test_a_word_in_a_numeric_column_is_an_error_naming_line_column_and_cell(three):
    got = csv_error(three, "file,age,note\n0.png,1.5,a\n\n1.png,n/a,b\n2.png,3,c\n")
    assert got == ("line 4, column 'age': 'n/a' is not a number (2 of the column's 3 filled cells are "
                   "numbers; leave the cell empty for a missing value)")


@pytest.mark.parametrize("cell, what", [("inf", "not a finite number"), ("NaN", "not a finite number"),
                                        ("-Infinity", "not a finite number"),
                                        ("1e999", "not a finite 32-bit number"),
                                        ("4e38", "not a finite 32-bit number")])
def test_non_finite_numbers_are_errors(three, cell, what):
    got = csv_error(three, f"file,w\n0.png,1\n1.png,{cell}\n2.png,2\n")
    assert got == (f"line 3, column 'w': {cell!r} is {what} (2 of the column's 3 filled cells are numbers; "
                   "leave the cell empty for a missing value)")


def test_text_columns_with_a_stray_number_are_ignored_and_empty_cells_are_missing(three):
    (three / "attributes.csv").write_text("file,note,w\n0.png,red,1\n1.png,7,\n2.png,blue,-1\n")
    ds = load_folder(three, size=4)
    assert ds.factor_names == ("w",) and ds.factor_values == {"w": ("no", "yes")}
    np.testing.assert_array_equal(ds.factor("w"), np.array([1, np.nan, 0], dtype=np.float32))


def test_a_huge_cell_non_utf8_bytes_and_ragged_rows_are_one_line_errors(three):
    huge = "x" * 200_000
    assert csv_error(three, f'file,w\n0.png,1\n1.png,"{huge}"\n') == (
        "line 3: a cell is over 131072 characters; is this a CSV table (an unclosed quote?)")
    assert csv_error(three, b"file,w\n0.png,1\n1.png,\xff\xfe\n") == (
        "line 3: not UTF-8 text (byte 0xff); save the table as UTF-8")
    assert csv_error(three, "file,w\n0.png,1\n1.png,2,3\n") == "line 3 has 3 cells, the header has 2"
    assert csv_error(three, "file,w\n0.png,1\n0.png,2\n") == "file '0.png' is listed twice (lines 2 and 3)"


# 4. Only regular files ----------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symlinks")
def test_fifos_loops_and_dangling_links_are_skipped_without_being_opened(tmp_path, cache):
    root = tmp_path / "d"
    solid(root / "good.png", (9, 9, 9))
    os.mkfifo(root / "fifo.png")  # opening this for reading would wait for a writer forever
    os.symlink("loop.png", root / "loop.png")
    os.symlink("missing.png", root / "dangling.png")
    os.symlink("good.png", root / "link.png")  # links to regular files are followed
    ds, report = in_thread(lambda: load_folder_report(root, size=4))
    assert ds.names == ("good.png", "link.png") and report.n_found == 5 and report.n_loaded == 2
    assert report.skipped == (("dangling.png", "dangling symlink"), ("fifo.png", "not a regular file"),
                              ("loop.png", "symlink loop"))
    again = in_thread(lambda: load(root, split="test", size=4, seed=1))
    assert len(again) == 0 or again.names[0] in ("good.png", "link.png")
    with pytest.raises(ImageDecodeError, match=r"fifo.png: not a regular file$"):
        in_thread(lambda: decode_image(root / "fifo.png", 4))
    with pytest.raises(ValueError, match=r"fifo.idx: not a regular file, expected an IDX file$"):
        os.mkfifo(tmp_path / "fifo.idx")
        in_thread(lambda: idx.read_idx(tmp_path / "fifo.idx", idx.LABEL_MAGIC))
    (tmp_path / "fifos").mkdir()
    os.mkfifo(tmp_path / "fifos/only.png")
    with pytest.raises(ValueError, match=r"fifos: no image files .* found; skipped 1 unreadable, e.g. only.png "
                                         r"\(not a regular file\)$"):
        load_folder(tmp_path / "fifos", size=4)


# 5. Interrupted and concurrent builds --------------------------------------------------------------------------


KILLED_BUILD = """
import sys, time
from latentspace.data import folder, folder_cache
folder_cache.decode_image = lambda path, size: time.sleep(600)
folder.load_folder(sys.argv[1], size=8)
"""


def test_a_killed_build_leaves_a_temp_file_that_the_next_build_removes(tmp_path, cache):
    solid(tmp_path / "d/a.png", (5, 5, 5))
    env = dict(os.environ, LATENTSPACE_CACHE=str(cache), PYTHONPATH=os.path.join(REPO, "src"))
    child = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(tmp_path / "d")], env=env)
    try:
        deadline = time.monotonic() + 60
        while not list(cache.glob("folders/*/.partial~*~raw.npy")) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    (left,) = cache.glob("folders/*/.partial~*~raw.npy")
    assert f"~{child.pid}~" in left.name
    old = cache / "folders" / "0ld" / ".raw.abc.npy"  # a LOADER_VERSION 1 leftover, two hours old
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 7200,) * 2)
    solid(tmp_path / "e/b.png", (7, 7, 7))  # any build sweeps every cache folder
    assert load_folder(tmp_path / "e", size=8).images[0, 0, 0, 0] == 7
    assert not left.exists() and not old.exists()


def test_which_temp_files_are_stale(tmp_path):
    now = time.time()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()

    def temp(name, age=0.0):
        path = tmp_path / name
        path.write_bytes(b"")
        os.utime(path, (now - age,) * 2)
        return cache_files.is_stale(path, now)

    assert temp(f".partial~{host}~{dead.pid}~a~raw.npy")  # this host, process gone
    assert not temp(f".partial~{host}~{os.getpid()}~b~raw.npy")  # a live build
    assert not temp(".partial~elsewhere~1~c~raw.npy", age=3600)  # another host's pids mean nothing here
    assert temp(".partial~elsewhere~1~d~raw.npy", age=2 * 86400)
    assert not temp(".raw.e.npy", age=60) and temp(".raw.f.npy", age=7200)
    assert not temp(".lock", age=1e6) and not temp("meta.json", age=1e6)


def test_concurrent_builds_of_one_cache_decode_each_file_once(tmp_path, cache, monkeypatch):
    for i in range(6):
        solid(tmp_path / "d" / f"{i}.png", (i * 10, 0, 0))
    calls, real = [], folder_cache.decode_image

    def slow(path, size):
        calls.append(path)
        time.sleep(0.02)
        return real(path, size)

    monkeypatch.setattr(folder_cache, "decode_image", slow)
    results = [None, None]
    workers = [threading.Thread(target=lambda k=k: results.__setitem__(k, load_folder(tmp_path / "d", size=4)))
               for k in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert len(calls) == 6  # the second builder waited for the lock, then read the finished cache
    np.testing.assert_array_equal(results[0].images, results[1].images)
    assert results[0].images[:, 0, 0, 0].tolist() == [0, 10, 20, 30, 40, 50]
    assert not list(cache.glob("folders/*/.partial*"))


# 6. IDX gzip bombs ---------------------------------------------------------------------------------------------


def gzip_of_zeros(header: bytes, n_bytes: int) -> bytes:
    """A multi-member gzip file of ``header`` + ``n_bytes`` zeros, ~1 kB per MiB: cheap to make, costly to inflate."""
    mib = gzip.compress(bytes(1 << 20), compresslevel=9)
    return gzip.compress(header) + mib * (n_bytes >> 20) + gzip.compress(bytes(n_bytes & ((1 << 20) - 1)))


def measured(fn):
    """(exception fn raised, seconds, peak bytes traced)."""
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return str(info.value), seconds, peak


def test_a_gzip_bomb_is_refused_from_its_header(tmp_path):
    n = (2 << 30) // 784 + 1  # 2 GiB of 28x28 images
    bomb = tmp_path / "bomb-idx3-ubyte.gz"
    bomb.write_bytes(gzip_of_zeros(struct.pack(">IIII", 2051, n, 28, 28), n * 784))
    assert bomb.stat().st_size < 3 << 20
    message, seconds, peak = measured(lambda: idx.read_idx(bomb, idx.IMAGE_MAGIC))
    assert message == (f"{bomb}: header says images of shape ({n}, 28, 28), over the limit of 268435456 bytes "
                       "(corrupt, or not one of the supported datasets)")
    assert seconds < 0.5 and peak < 1 << 20


def test_gzip_is_inflated_only_up_to_the_declared_size(tmp_path):
    trailing = tmp_path / "t.gz"  # 3 labels declared, 64 MiB more inflated bytes behind them
    trailing.write_bytes(gzip_of_zeros(struct.pack(">II", 2049, 3), 3 + (64 << 20)))
    message, seconds, peak = measured(lambda: idx.read_idx(trailing, idx.LABEL_MAGIC))
    assert message == f"{trailing}: has trailing bytes: header says labels of shape (3,) = 11 bytes, file holds more"
    assert seconds < 0.5 and peak < 1 << 20
    short = tmp_path / "s.gz"  # 200 MB declared in a 1 kB file: deflate cannot expand that far
    short.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 255_000, 28, 28) + bytes(1000)))
    message, seconds, peak = measured(lambda: idx.read_idx(short, idx.IMAGE_MAGIC))
    size = short.stat().st_size
    assert message == (f"{short}: truncated: header says images of shape (255000, 28, 28) = 199920016 bytes, "
                       f"file holds at most {1032 * size}")
    assert seconds < 0.5 and peak < 1 << 20
    raw = tmp_path / "raw"  # uncompressed: the file size says it before anything is read
    raw.write_bytes(struct.pack(">IIII", 2051, 100_000, 28, 28) + bytes(784))
    message, _, peak = measured(lambda: idx.read_idx(raw, idx.IMAGE_MAGIC))
    assert message.endswith("truncated: header says images of shape (100000, 28, 28) = 78400016 bytes, file "
                            "holds 800") and peak < 1 << 20


def test_a_valid_multi_member_gzip_file_still_loads(tmp_path):
    path = tmp_path / "ok.gz"
    pixels = np.arange(2 * 784, dtype=np.uint8)
    data = struct.pack(">IIII", 2051, 2, 28, 28) + pixels.tobytes()
    path.write_bytes(gzip.compress(data[:100]) + gzip.compress(data[100:]))
    got = idx.read_idx(path, idx.IMAGE_MAGIC)
    np.testing.assert_array_equal(got.reshape(-1), pixels)
    got[0, 0, 0] = 1  # writable, like the arrays of every other loader


# 7. Bounded memory -----------------------------------------------------------------------------------------------


def test_splits_of_a_folder_are_memory_mapped_with_the_same_pixels(tmp_path, cache):
    for i in range(40):
        solid(tmp_path / "flat" / f"{i:02d}.png", (i, 2 * i, 3 * i))
    full = load_folder(tmp_path / "flat", size=4)
    for split in ("train", "test"):
        part = load_folder(tmp_path / "flat", split=split, size=4, seed=3)
        assert isinstance(part.images, np.memmap), split
        rows = [full.names.index(n) for n in part.names]
        np.testing.assert_array_equal(part.images, full.images[rows])
        assert part.split == split
    assert len(list(cache.glob("folders/*/images.*.seed3.npy"))) == 2
    first = load(tmp_path / "flat", split="train", size=4, seed=3, n=5)
    assert isinstance(first.images, np.memmap) and len(first) == 5
    for i in range(2):
        solid(tmp_path / "split/train/x" / f"{i}.png", (i, i, i))
        solid(tmp_path / "split/test/x" / f"{i}.png", (9, 9, 9))
    test = load_folder(tmp_path / "split", split="test", size=4)
    assert isinstance(test.images, np.memmap) and test.images[:, 0, 0, 0].tolist() == [9, 9]


def test_decoding_keeps_a_bounded_number_of_images_in_flight(tmp_path, cache, monkeypatch):
    for i in range(40):
        solid(tmp_path / "d" / f"{i:02d}.png", (i, i, i))
    monkeypatch.setattr(folder_cache, "IN_FLIGHT_BYTES", 1)  # the floor: two images per decoding thread
    window = 2 * (os.cpu_count() or 1)
    started, ahead, lock = [0], [], threading.Lock()

    class SlowProgress:
        stored = 0

        def start(self, total, description):
            pass

        def advance(self, n=1, **info):
            time.sleep(0.005)  # a slow consumer: an unbounded pool would race far ahead of it
            self.stored += n

        def close(self):
            pass

    progress = SlowProgress()
    real = folder_cache.decode_image

    def counting(path, size):
        with lock:
            started[0] += 1
            ahead.append(started[0] - progress.stored)
        return real(path, size)

    monkeypatch.setattr(folder_cache, "decode_image", counting)
    load_folder_report(tmp_path / "d", size=4, progress=progress)
    assert started[0] == 40 and max(ahead) <= window < 40
