"""Image-folder loading: layout -> labels/splits, attributes.csv, skipped files, decoding, the cache."""
from __future__ import annotations

import io
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from latentspace.data import folder, folder_cache, load
from latentspace.data.folder import LoadReport, load_folder, load_folder_report, scan_folder

COLOURS = {  # solid images: after any resize every pixel must still be this colour
    "cats/a.png": (250, 10, 10),
    "cats/sub/b.jpg": (10, 250, 10),
    "cats/c.gif": (0, 0, 255),
    "dogs/d.png": (20, 40, 60),
    "dogs/e.webp": (200, 200, 0),
    "dogs/f.bmp": (90, 90, 90),
}
CSV = """filename,smiling,glasses,age,note
cats/a.png,1,0,1.5,x
b.jpg,-1,1,2.0,y
./cats/c.gif,1,0,,z
dogs/d.png,-1,0,4,w
e.webp,1,1,5.25,v
dogs\\f.bmp,-1,0,6,u
dogs/broken.jpg,1,0,7,t
cats/notes.png,1,0,8,s
not/here.png,1,1,9,r
"""


def solid(path, colour, size=(30, 20), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSPACE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def pets(tmp_path, cache):
    root = tmp_path / "pets"
    for rel, colour in COLOURS.items():
        solid(root / rel, colour)
    frames = [Image.new("RGB", (30, 20), c) for c in ((0, 0, 255), (255, 0, 0))]
    frames[0].save(root / "cats/c.gif", save_all=True, append_images=frames[1:])  # first frame is blue
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "JPEG")
    (root / "dogs/broken.jpg").write_bytes(buf.getvalue()[:400])  # truncated JPEG
    (root / "cats/notes.png").write_text("not an image at all")
    (root / "dogs/readme.txt").write_text("ignored: not an image suffix")
    (root / ".thumbs").mkdir()
    solid(root / ".thumbs/hidden.png", (0, 0, 0))
    (root / "attributes.csv").write_text(CSV)
    return root


class CountingProgress:
    def __init__(self):
        self.started, self.advanced = [], 0

    def start(self, total, description):
        self.started.append((total, description))

    def advance(self, n=1, **info):
        self.advanced += n

    def close(self):
        pass


def test_loads_good_images_with_labels_attributes_and_report(pets, caplog):
    progress = CountingProgress()
    with caplog.at_level("WARNING"):
        ds, report = load_folder_report(pets, size=8, progress=progress)
    assert ds.names == ("cats/a.png", "cats/c.gif", "cats/sub/b.jpg", "dogs/d.png", "dogs/e.webp", "dogs/f.bmp")
    assert ds.images.shape == (6, 3, 8, 8) and ds.images.dtype == np.uint8
    assert ds.class_names == ("cats", "dogs") and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    for i, name in enumerate(ds.names):
        tol = 3 if name.endswith((".jpg", ".webp")) else 0  # lossy formats
        diff = np.abs(ds.images[i].astype(int) - np.array(COLOURS[name])[:, None, None])
        assert diff.max() <= tol, name
    assert report == LoadReport(8, 6, (("cats/notes.png", "cannot identify image"), ("dogs/broken.jpg", "truncated")))
    assert "skipped 2 of 8 files: cats/notes.png (cannot identify image), dogs/broken.jpg (truncated)" in caplog.text
    assert progress.started == [(8, "decoding images")] and progress.advanced == 8
    assert ds.factor_names == ("smiling", "glasses", "age")
    assert ds.factor_values == {"smiling": ("no", "yes"), "glasses": ("no", "yes")}
    np.testing.assert_array_equal(ds.factor("smiling"), [1, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(ds.factor("glasses"), [0, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(ds.factor("age"), np.array([1.5, np.nan, 2.0, 4, 5.25, 6], dtype=np.float32))
    assert ds.name == "pets" and ds.split is None


def test_second_load_decodes_nothing(pets, monkeypatch):
    first, report = load_folder_report(pets, size=8)
    calls = []
    monkeypatch.setattr(folder_cache, "decode_image", lambda *a: calls.append(a) or np.zeros((3, 8, 8), np.uint8))
    second, again = load_folder_report(pets, size=8)
    assert calls == []
    np.testing.assert_array_equal(second.images, first.images)
    assert (second.names, second.labels.tolist(), again) == (first.names, first.labels.tolist(), report)
    second.images[0] = 0  # copy-on-write: the cache file is not changed
    np.testing.assert_array_equal(load_folder(pets, size=8).images, first.images)
    os.utime(pets / "dogs/d.png", ns=(1, 1))  # a changed file invalidates the cache
    load_folder(pets, size=8)
    assert len(calls) == 8


def test_images_without_a_row_are_dropped_and_reported(pets):
    (pets / "attributes.csv").write_text("image_id,smiling\na.png,1\nd.png,-1\n")
    ds, report = load_folder_report(pets, size=4)
    assert ds.names == ("cats/a.png", "dogs/d.png") and ds.factor("smiling").tolist() == [1, 0]
    assert report.n_found == 8 and report.n_loaded == 2
    assert dict(report.skipped)["cats/sub/b.jpg"] == folder.NO_ROW and len(report.skipped) == 6


def test_attributes_matching_no_image_is_refused(pets):
    (pets / "attributes.csv").write_text("filename,x\nelsewhere/zzz.png,1\n")
    with pytest.raises(ValueError, match=r"attributes.csv: no row names any of the 8 images"):
        load_folder(pets)


def test_ambiguous_base_name_in_attributes_is_refused(pets):
    solid(pets / "dogs/a.png", (1, 1, 1))
    (pets / "attributes.csv").write_text("file,x\na.png,1\n")
    with pytest.raises(ValueError, match=r"attributes.csv: row 'a.png' matches 2 images"):
        load_folder(pets)


def test_train_test_folders_define_the_splits(tmp_path, cache):
    for rel in ("train/x/1.png", "train/x/2.png", "train/y/3.png", "test/x/4.png", "test/y/5.png", "test/z/6.png"):
        solid(tmp_path / "d" / rel, (int(rel[-5]) * 40, 0, 0))
    train = load(tmp_path / "d", split="train", size=4)
    test = load(tmp_path / "d", split="test", size=4)
    whole = load(tmp_path / "d", size=4)
    assert train.names == ("train/x/1.png", "train/x/2.png", "train/y/3.png") and train.split == "train"
    assert test.names == ("test/x/4.png", "test/y/5.png", "test/z/6.png")
    assert train.class_names == ("x", "y", "z") and test.labels.tolist() == [0, 1, 2]
    assert whole.names == train.names + test.names
    assert test.images[:, 0, 0, 0].tolist() == [160, 200, 240]


def test_seeded_split_is_deterministic_and_disjoint(tmp_path, cache):
    for i in range(30):
        solid(tmp_path / "flat" / f"{i:02d}.png", (i, i, i))
    a_train, a_test = (load_folder(tmp_path / "flat", split=s, size=4, seed=7) for s in ("train", "test"))
    b_test = load_folder(tmp_path / "flat", split="test", size=4, seed=7)
    c_test = load_folder(tmp_path / "flat", split="test", size=4, seed=8)
    assert len(a_test) == 3 and len(a_train) == 27
    assert set(a_train.names).isdisjoint(a_test.names) and len(set(a_train.names) | set(a_test.names)) == 30
    assert a_test.names == b_test.names and a_test.names != c_test.names
    assert a_train.labels is None and a_train.images.shape[1] == 1  # no class folders; all grey -> 1 channel
    np.testing.assert_array_equal(a_test.images[:, 0, 0, 0], [int(n[:2]) for n in a_test.names])


def test_channels_option_and_colour_detection(pets):
    grey = load_folder(pets, size=4, channels=1)
    assert grey.images.shape == (6, 1, 4, 4)
    red = grey.names.index("cats/a.png")
    assert grey.images[red, 0, 0, 0] == (250 * 19595 + 10 * 38470 + 10 * 7471 + 0x8000) >> 16
    assert load_folder(pets, size=4).images.shape[1] == 3  # colour images present


def test_layout_rules(tmp_path, cache):
    solid(tmp_path / "one/only/a.png", (1, 1, 1))
    solid(tmp_path / "one/only/b.png", (2, 2, 2))
    assert scan_folder(tmp_path / "one").labels is None  # a single folder is not a classification
    solid(tmp_path / "mixed/x/a.png", (1, 1, 1))
    solid(tmp_path / "mixed/y/b.png", (1, 1, 1))
    solid(tmp_path / "mixed/loose.png", (1, 1, 1))
    with pytest.raises(ValueError, match="1 images .e.g. loose.png. sit beside the class folders x, y"):
        scan_folder(tmp_path / "mixed")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        scan_folder(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk/a.png").write_text("nope")
    with pytest.raises(ValueError, match="none of the 1 image files could be read"):
        load_folder(tmp_path / "junk")


def test_decompression_bombs_are_skipped(tmp_path, cache, monkeypatch):
    solid(tmp_path / "b/small.png", (5, 5, 5), size=(8, 8))
    solid(tmp_path / "b/big.png", (5, 5, 5), size=(64, 64))  # 4096 px: a warning, not an error, in PIL
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        filters_before = list(warnings.filters)
        ds, report = load_folder_report(tmp_path / "b", size=4)
        assert warnings.filters == filters_before  # the error filter was local to the load
    assert ds.names == ("small.png",) and report.skipped == (("big.png", "decompression bomb"),)
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]
