"""TensorBoard projector export: the four files, their contents and the sprite geometry."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from latentspace.latent.export import export_projector, sprite, thumbnail_size


def _data(n=10, shape=(1, 4, 4), seed=0):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, 3)) * [1e-3, 1.0, 300.0]).astype(np.float32)
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    return z, images


def test_files_exist_and_tensors_round_trip(tmp_path):
    z, images = _data()
    out = export_projector(tmp_path / "proj", z, images, {"label": list(range(10))}, name="mnist")
    assert sorted(p.name for p in out.iterdir()) == ["metadata.tsv", "projector_config.pbtxt", "sprite.png", "tensors.tsv"]
    back = np.loadtxt(out / "tensors.tsv", delimiter="\t", dtype=np.float64)
    assert back.shape == (10, 3)
    np.testing.assert_allclose(back, z, rtol=1e-5, atol=0)
    config = (out / "projector_config.pbtxt").read_text()
    for line in ('tensor_name: "mnist"', 'tensor_path: "tensors.tsv"', 'metadata_path: "metadata.tsv"',
                 'image_path: "sprite.png"', "single_image_dim: 4"):
        assert line in config
    assert config.count("{") == config.count("}") == 2


def test_metadata_header_only_with_several_columns(tmp_path):
    z, _ = _data()
    one = export_projector(tmp_path / "one", z, metadata={"label": ["a\tb"] * 10})
    lines = (one / "metadata.tsv").read_text().splitlines()
    assert lines == ["a b"] * 10  # no header; the tab inside a value became a space
    two = export_projector(tmp_path / "two", z, metadata={"label": list(range(10)), "split": ["test"] * 10})
    lines = (two / "metadata.tsv").read_text().splitlines()
    assert len(lines) == 11 and lines[0] == "label\tsplit" and lines[4] == "3\ttest"
    assert not (two / "sprite.png").exists() and "sprite" not in (two / "projector_config.pbtxt").read_text()


def test_sprite_is_a_square_grid_of_thumbnails_in_order(tmp_path):
    z, images = _data(n=10, shape=(1, 4, 6))
    out = export_projector(tmp_path, z, images)
    with Image.open(out / "sprite.png") as img:
        assert img.mode == "L" and img.size == (math.ceil(math.sqrt(10)) * 6, math.ceil(math.sqrt(10)) * 4)
        pixels = np.asarray(img)
    np.testing.assert_array_equal(pixels[0:4, 6:12], images[1, 0])  # row 0, column 1
    np.testing.assert_array_equal(pixels[8:12, 6:12], images[9, 0])  # row 2, column 1
    assert pixels[8:12, 12:18].max() == 0  # cells past the last image are empty
    config = (out / "projector_config.pbtxt").read_text()
    assert config.index("single_image_dim: 6") < config.index("single_image_dim: 4")  # [width, height]


def test_rgb_sprite_and_downscaling_to_fit():
    _, images = _data(n=5, shape=(3, 8, 8))
    images[0] = 200  # a flat image stays flat when averaged down
    s = sprite(images, max_side=12)
    assert s.shape == (12, 12, 3)
    np.testing.assert_array_equal(s[:4, :4], 200)
    assert thumbnail_size(10_000, 28, 28) == (28, 28)
    h, w = thumbnail_size(100_000, 28, 28)
    assert (h, w) == (25, 25) and math.ceil(math.sqrt(100_000)) * 25 <= 8192


def test_mismatched_inputs_are_errors(tmp_path):
    z, images = _data()
    with pytest.raises(ValueError, match="'label' has 3 values, expected 10"):
        export_projector(tmp_path, z, metadata={"label": [1, 2, 3]})
    with pytest.raises(ValueError, match="uint8"):
        export_projector(tmp_path, z, images[:5])


# -- codes as a Parquet table ------------------------------------------------------------------------------

def _columns(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "names": [f"dir/img {i}\tä.png" for i in range(n)],
        "labels": rng.integers(0, 3, n),
        "class_names": ("cat", "dog", "emu"),
        "factors": np.stack([rng.integers(0, 2, n), rng.standard_normal(n)], axis=1).astype(np.float32),
        "factor_names": ("glasses", "smile"),
        "factor_values": {"glasses": ("no", "yes")},
    }


def test_parquet_codes_round_trip_exactly(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from latentspace.latent.codes_table import read_codes_parquet, write_codes_parquet

    z, _ = _data(n=6)
    columns = _columns()
    path = write_codes_parquet(tmp_path / "codes.parquet", z, **columns)
    table = pq.read_table(path)
    assert table.column_names == ["name", "label", "factor_glasses", "factor_smile", "z"]
    assert table.schema.field("z").type == pa.list_(pa.float32(), 3)  # one fixed-size list column
    assert table.num_rows == 6 and table.column("name").to_pylist()[2] == "dir/img 2\tä.png"
    back = read_codes_parquet(path)
    assert sorted(back) == ["class_names", "factor_names", "factors", "labels", "names", "z"]
    np.testing.assert_array_equal(back["z"], z)
    assert back["z"].dtype == np.float32 and back["labels"].dtype == np.int64
    np.testing.assert_array_equal(back["labels"], columns["labels"])
    np.testing.assert_array_equal(back["factors"], columns["factors"])
    assert back["names"].tolist() == columns["names"]
    assert back["class_names"].tolist() == ["cat", "dog", "emu"]
    assert back["factor_names"].tolist() == ["glasses", "smile"]


def test_parquet_codes_without_columns_and_bad_input(tmp_path):
    from latentspace.latent.codes_table import read_codes_parquet, write_codes_parquet

    z, _ = _data(n=4)
    back = read_codes_parquet(write_codes_parquet(tmp_path / "z.parquet", z))
    assert sorted(back) == ["z"]
    np.testing.assert_array_equal(back["z"], z)
    with pytest.raises(ValueError, match="names has 3 rows, z has 4"):
        write_codes_parquet(tmp_path / "y.parquet", z, names=["a", "b", "c"])
    with pytest.raises(ValueError, match="must end in .parquet"):
        write_codes_parquet(tmp_path / "y.npz", z)
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ValueError, match="junk.parquet: not a readable Parquet file"):
        read_codes_parquet(tmp_path / "junk.parquet")


def test_parquet_needs_its_extra(monkeypatch, tmp_path):
    import importlib.util

    from latentspace.latent.codes_table import write_codes_parquet

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(ValueError) as info:
        write_codes_parquet(tmp_path / "z.parquet", np.zeros((2, 3), np.float32))
    assert str(info.value) == "Parquet output needs the parquet extra: pip install 'latentspace[parquet]'"
