"""`latentspace data info|show` through typer's CliRunner, on real MNIST and on tiny temp folders."""
from __future__ import annotations

import re

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from latentspace.cli import data as data_cli
from latentspace.data import ImageSet
from latentspace.viz.grid import image_grid, text_width

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    # A fresh app with only this verb, so these tests do not depend on the other subcommands.
    app = typer.Typer()
    data_cli.register(app)
    return app


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSPACE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tiny"
    for i, cls in enumerate(["ant", "ant", "bee", "bee", "bee"]):
        (root / cls).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 16), (40 * i, 0, 0)).save(root / cls / f"{i}.png")
    return root


def numbers_in(row_name: str, text: str) -> list[int]:
    line = next(line for line in text.splitlines() if re.search(rf"\b{re.escape(row_name)}\b", line))
    return [int(x) for x in re.findall(r"\b\d+\b", line)]


def test_info_on_mnist(app, mnist_dir):
    result = runner.invoke(app, ["data", "info", "mnist", "--data-dir", str(mnist_dir)])
    assert result.exit_code == 0, result.output
    assert numbers_in("train", result.output)[:1] == [60000]
    assert numbers_in("test", result.output)[:1] == [10000]
    assert numbers_in("total", result.output)[:1] == [70000]
    assert "1x28x28" in result.output
    lines = [line for line in result.output.splitlines() if re.match(r"^\W*1\W", line)]
    assert [int(x) for x in re.findall(r"\d+", lines[0])] == [1, 6742, 1135, 7877]  # class "1"


def test_info_on_a_folder_with_factors(app, tiny):
    (tiny / "attributes.csv").write_text(
        "filename,striped,weight\n0.png,1,0.5\n1.png,-1,1.5\n2.png,1,2.5\n3.png,1,3.5\n4.png,-1,\n"
    )
    result = runner.invoke(app, ["data", "info", str(tiny), "--size", "8"])
    assert result.exit_code == 0, result.output
    assert numbers_in("total", result.output)[:1] == [5]
    assert "no 2, yes 3" in result.output
    assert "min 0.5, mean 2, max 3.5, 1 missing" in result.output


def test_show_writes_a_captioned_grid(app, tiny, tmp_path):
    out = tmp_path / "grid.png"
    result = runner.invoke(app, ["data", "show", str(tiny), "--n", "4", "--out", str(out), "--size", "16"])
    assert result.exit_code == 0, result.output
    expected = image_grid(np.zeros((4, 3, 16, 16), np.uint8), captions=["x"] * 4)  # layout ignores the text
    with Image.open(out) as img:
        assert img.size == expected.size and img.mode == "RGB"
    assert f"wrote {out}: 4 images of tiny (all), {expected.width}x{expected.height} px\n" in result.output


def test_show_on_mnist_test_split(app, mnist_dir, tmp_path):
    out = tmp_path / "digits.gif"
    result = runner.invoke(
        app, ["data", "show", "mnist", "--split", "test", "--n", "9", "--out", str(out), "--data-dir", str(mnist_dir)]
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.size == image_grid(np.zeros((9, 1, 28, 28), np.uint8), captions=["x"] * 9).size


def test_show_refuses_bad_options(app, tiny, tmp_path):
    for args in (["--split", "val"], ["--n", "0"]):
        result = runner.invoke(app, ["data", "show", str(tiny), "--out", str(tmp_path / "g.png"), *args])
        assert result.exit_code == 2 and not (tmp_path / "g.png").exists()


def test_factor_captions_name_every_discrete_value_on_its_own_line():
    factors = np.array([[4, 1, 0.25, 0.5], [0, 0, -0.5, np.nan]], np.float32)
    ds = ImageSet(
        images=np.zeros((2, 3, 64, 64), np.uint8), name="mini-faces", factors=factors,
        factor_names=("hair_color", "glasses", "smile", "head_x"),
        factor_values={"hair_color": ("black", "brown", "blond", "red", "grey"), "glasses": ("no", "yes")},
    )
    assert data_cli.caption(ds, 0) == "hair color: grey\nglasses: yes\nsmile: 0.25\nhead x: 0.5"
    assert data_cli.caption(ds, 1) == "hair color: black\nglasses: no\nsmile: -0.5\nhead x: ?"
    many = ImageSet(
        images=np.zeros((1, 1, 8, 8), np.uint8), name="many", factors=np.zeros((1, 8), np.float32),
        factor_names=tuple(f"f{k}" for k in range(8)),
        factor_values={f"f{k}": ("a", "b") for k in range(1, 8, 2)},
    )
    # the four discrete factors first, then continuous ones up to MAX_CAPTION_LINES lines
    assert data_cli.caption(many, 0).split("\n") == ["f1: a", "f3: a", "f5: a", "f7: a", "f0: 0", "f2: 0"]
    captions = [data_cli.caption(ds, i) for i in range(2)]
    scale = data_cli.caption_scale(captions, 64)
    assert scale >= 2 and text_width("hair color: black") <= 64 * scale  # tiles widen until every line fits
    assert data_cli.caption_scale(["0", "1"], 28) == 1
