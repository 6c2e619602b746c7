"""Streaming, sharded encode of an image folder: the same codes as the in-memory encode, shard by shard with a
bounded number of images decoded at once, and an interrupted encode resumes to byte-identical files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from latentspace.api import stream
from latentspace.api.stream import encode_folder
from latentspace.cli.main import app
from latentspace.latent.shards import INDEX, read_shards
from latentspace.models import ModelConfig, build, save_model
from latentspace.train.config import TrainConfig
from latentspace.train.run import write_run_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N_GOOD = 17  # readable images; plus one broken file


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "run"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build(ModelConfig(image_shape=(3, 16, 16), latent_dim=3, width=4, hidden=16))
    write_run_config(path, model.config, TrainConfig(), None)
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two class folders of 20x24 RGB PNGs (scaled and cropped to 16x16 on load) and one unreadable file."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(N_GOOD):
        sub = root / ("cats" if i % 3 else "dogs")
        sub.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(sub / f"img{i:02d}.png")
    (root / "cats" / "broken.png").write_bytes(b"not an image at all")
    return root


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def files_of(out_dir):
    return {p.name: p.read_bytes() for p in sorted(out_dir.iterdir())}


@pytest.fixture(scope="module")
def in_memory(run_dir, folder, tmp_path_factory):
    """The codes file of the plain in-memory encode of the same folder."""
    path = tmp_path_factory.mktemp("mem") / "z.npz"
    invoke("encode", run_dir, folder, "--out", path, "--device", "cpu")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_streaming_encode_equals_the_in_memory_encode(run_dir, folder, in_memory, tmp_path, fmt):
    out = tmp_path / "codes"
    result = invoke("encode", run_dir, folder, "--out", out, "--shard-size", 5, "--batch-size", 2,
                    "--format", fmt, "--device", "cpu")
    assert f"{N_GOOD} codes of 3 values (posterior means) in 4 {fmt} shards" in result.output
    assert "skipped 1 of 18 files: cats/broken.png (cannot identify image)" in result.output
    back = read_shards(out)
    assert back["z"].shape == (N_GOOD, 3) and back["z"].dtype == np.float32
    np.testing.assert_array_equal(back["names"], in_memory["names"])
    np.testing.assert_array_equal(back["labels"], in_memory["labels"])
    np.testing.assert_array_equal(back["class_names"], ["cats", "dogs"])
    torch.testing.assert_close(back["z"], in_memory["z"], rtol=0, atol=1e-6)
    index = json.loads((out / INDEX).read_text())
    assert [s["n_files"] for s in index["shards"]] == [5, 5, 5, 3]  # 18 files in sorted order
    assert [s["rows"] for s in index["shards"]] == [4, 5, 5, 3]  # cats/broken.png sorts first: shard 0
    assert index["shards"][0]["skipped"] == [["cats/broken.png", "cannot identify image"]]


def test_parquet_shards_read_as_one_dataset(run_dir, folder, in_memory, tmp_path):
    import pyarrow.dataset as ds

    out = tmp_path / "codes"
    encode_folder(run_dir, folder, out, shard_size=7, fmt="parquet")
    table = ds.dataset(out, format="parquet").to_table()  # the "_" of _index.json keeps it out of the dataset
    assert table.num_rows == N_GOOD and table.column_names == ["name", "label", "z"]
    assert sorted(table.column("name").to_pylist()) == sorted(in_memory["names"].tolist())


def test_at_most_one_batch_is_decoded_at_once_and_each_shard_is_written_before_the_next(
        run_dir, folder, tmp_path, monkeypatch):
    events = []
    real_decode, real_write = stream.decode_batch, stream.write_shard

    def decode(pool, root, files, shape):
        events.append(("decode", len(files)))
        return real_decode(pool, root, files, shape)

    def write(out_dir, k, fmt, z, *rest):
        events.append(("write", len(z)))
        return real_write(out_dir, k, fmt, z, *rest)

    monkeypatch.setattr(stream, "decode_batch", decode)
    monkeypatch.setattr(stream, "write_shard", write)
    encode_folder(run_dir, folder, tmp_path / "codes", shard_size=8, batch_size=3)
    # 18 files in shards of 8, 8, 2, each decoded 3 files at a time, and written before the next is decoded.
    assert events == [("decode", 3), ("decode", 3), ("decode", 2), ("write", 8 - _bad_in(folder, 0, 8)),
                      ("decode", 3), ("decode", 3), ("decode", 2), ("write", 8 - _bad_in(folder, 8, 16)),
                      ("decode", 2), ("write", 2 - _bad_in(folder, 16, 18))]


def _bad_in(folder, lo, hi):
    """How many of the sorted files lo..hi-1 are the broken one."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    return int("cats/broken.png" in files[lo:hi])


def test_an_interrupted_encode_resumes_to_identical_files(run_dir, folder, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    encode_folder(run_dir, folder, whole, shard_size=5, sample=True, seed=3)

    part = tmp_path / "part"
    real_write = stream.write_shard
    calls = []

    def write_then_die(*args):
        if calls:
            raise KeyboardInterrupt  # killed while the second shard is being written
        calls.append(args[1])
        return real_write(*args)

    monkeypatch.setattr(stream, "write_shard", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        encode_folder(run_dir, folder, part, shard_size=5, sample=True, seed=3)
    assert [s["shard"] for s in json.loads((part / INDEX).read_text())["shards"]] == [0]
    monkeypatch.setattr(stream, "write_shard", real_write)
    with pytest.raises(ValueError, match="1 of 4 shards are finished"):
        read_shards(part)

    result = encode_folder(run_dir, folder, part, shard_size=5, sample=True, seed=3)
    assert (result.n_resumed, result.n_shards, result.n_encoded) == (1, 4, N_GOOD)
    assert files_of(part) == files_of(whole)

    # A lost last shard (files gone, entry dropped) is written again, identically.
    index = json.loads((part / INDEX).read_text())
    for name in index["shards"][-1]["files"]:
        (part / name).unlink()
    index["shards"] = index["shards"][:-1]
    (part / INDEX).write_text(json.dumps(index))
    assert encode_folder(run_dir, folder, part, shard_size=5, sample=True, seed=3).n_resumed == 3
    assert files_of(part) == files_of(whole)


def test_another_encode_into_the_same_folder_is_refused(run_dir, folder, tmp_path):
    out = tmp_path / "codes"
    encode_folder(run_dir, folder, out, shard_size=5)
    with pytest.raises(ValueError, match="holds an encode with other shard_size; choose another --out"):
        encode_folder(run_dir, folder, out, shard_size=6)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder and has no _index.json"):
        encode_folder(run_dir, folder, tmp_path / "busy")


def test_sharded_encode_options_are_checked(run_dir, folder, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["encode", str(run_dir), str(folder), "--out", str(tmp_path / "z.npz"),
                                 "--shard-size", "5"])
    assert result.exit_code != 0 and "give --out a folder" in result.output
    result = runner.invoke(app, ["encode", str(run_dir), "mnist", "--out", str(tmp_path / "codes")])
    assert result.exit_code != 0 and "reads one image folder" in result.output
    result = runner.invoke(app, ["encode", str(run_dir), str(folder), "--out", str(tmp_path / "z.txt")])
    assert result.exit_code != 0 and "must end in .npz or .parquet" in result.output


def test_parquet_codes_file_holds_what_the_npz_holds(run_dir, folder, in_memory, tmp_path):
    from latentspace.latent.codes_table import read_codes_parquet

    invoke("encode", run_dir, folder, "--out", tmp_path / "z.parquet", "--device", "cpu")
    back = read_codes_parquet(tmp_path / "z.parquet")
    assert sorted(back) == sorted(in_memory)
    for key, value in in_memory.items():
        np.testing.assert_array_equal(back[key], value)


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_factors_from_attributes_csv_travel_with_the_codes(run_dir, tmp_path, fmt):
    root = tmp_path / "flat"
    root.mkdir()
    rng = np.random.default_rng(1)
    rows = ["filename,glasses,smile"]
    for i in range(9):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / f"f{i}.png")
        if i != 4:  # f4.png has no row: not encoded, as the folder loader drops it
            rows.append(f"f{i}.png,{i % 2},{i / 10}")
    (root / "attributes.csv").write_text("\n".join(rows) + "\n")
    invoke("encode", run_dir, root, "--out", tmp_path / "z.npz", "--device", "cpu")
    result = encode_folder(run_dir, root, tmp_path / "codes", shard_size=3, fmt=fmt)
    assert result.skipped == (("f4.png", "no row in attributes.csv"),) and result.n_encoded == 8
    back = read_shards(tmp_path / "codes")
    with np.load(tmp_path / "z.npz", allow_pickle=False) as mem:
        assert sorted(back) == sorted(mem.files) == ["factor_names", "factors", "names", "z"]
        np.testing.assert_array_equal(back["names"], mem["names"])
        np.testing.assert_array_equal(back["factors"], mem["factors"])
        np.testing.assert_array_equal(back["factor_names"], ["glasses", "smile"])
        torch.testing.assert_close(back["z"], mem["z"], rtol=0, atol=1e-6)
