"""Counting the possibility space: exact integers, digit counts past 10,000 digits, tiny enumerations, the CLI."""
from __future__ import annotations

import math

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from latentspace.cli.space import parse_shape, register
from latentspace.latent.space import (
    _digits_and_leading_from_logs, count_space, coverage_log10, enumerate_space, latent_grid_points, level_values,
)


def _digits(x: int) -> int:
    """Decimal length of x by integer comparisons only (no str(), which stops at 4300 digits)."""
    d = int(math.log10(x)) if x < 10**300 else int(x.bit_length() * math.log10(2))
    while 10**d <= x:
        d += 1
    while d > 1 and 10 ** (d - 1) > x:
        d -= 1
    return d


def test_two_by_two_binary_has_16_distinct_images():
    count = count_space((2, 2, 1), 2)
    assert (count.exact, count.digits, count.leading, count.n_axes) == (16, 2, "16", 4)
    images = enumerate_space((2, 2, 1), 2)
    assert images.shape == (16, 1, 2, 2) and images.dtype == np.uint8
    assert len(np.unique(images.reshape(16, -1), axis=0)) == 16
    assert set(np.unique(images)) == {0, 255}


def test_one_by_two_binary_has_4_images():
    assert count_space((1, 2), 2).exact == 4
    images = enumerate_space((1, 2), 2)
    np.testing.assert_array_equal(images.reshape(4, 2), [[0, 0], [0, 255], [255, 0], [255, 255]])


def test_levels_spread_evenly_over_bytes():
    np.testing.assert_array_equal(level_values(3), [0, 128, 255])
    images = enumerate_space((1, 1, 3), 3)  # one RGB pixel
    assert images.shape == (27, 3, 1, 1) and len(np.unique(images.reshape(27, 3), axis=0)) == 27


def test_mnist_space_is_exact_with_1889_digits():
    count = count_space((28, 28, 1), 256)
    truth = 256**784
    assert count.exact == truth
    assert count.digits == 1889
    assert count.leading == str(truth)[:10]
    assert count.exact_str() == str(truth)
    assert count.scientific() == f"{str(truth)[0]}.{str(truth)[1:10]}e+1888"


def test_axes_times_values_is_not_the_count():
    count = count_space((28, 28, 1), 256)
    assert count.axes_times_values == 200_704
    assert "200,704" in count.explanation and "256^784" in count.explanation and "multiply" in count.explanation


@pytest.mark.parametrize("shape, levels", [((64, 64, 3), 256), ((70, 70, 3), 7), ((120, 120), 5)])
def test_past_10000_digits_digits_and_leading_match_the_exact_integer(shape, levels):
    count = count_space(shape, levels)
    truth = levels ** count.n_axes
    assert count.exact is None
    assert count.digits == _digits(truth)
    assert int(count.leading) == truth // 10 ** (count.digits - 10)


@pytest.mark.parametrize("n, m", [(784, 256), (100, 3), (1000, 7), (40, 2), (2500, 255), (333, 65535)])
def test_log_path_agrees_with_integers_where_both_work(n, m):
    truth = m**n
    digits, leading = _digits_and_leading_from_logs(n, m, 10)
    assert digits == _digits(truth)
    assert int(leading) == truth // 10 ** (digits - 10)


def test_powers_of_ten_and_the_exact_threshold():
    at_limit = count_space((9999, 1, 1), 10)  # 10**9999: exactly 10,000 digits, still exact
    assert at_limit.digits == 10_000 and at_limit.exact == 10**9999
    past = count_space((10_000, 1, 1), 10)
    assert past.digits == 10_001 and past.exact is None and past.leading == "1000000000"
    assert count_space((100, 100, 3), 10).digits == 30_001


def test_latent_grid_and_coverage():
    assert latent_grid_points(16, 10) == 10**16
    assert latent_grid_points(2, 20) == 400
    count = count_space((28, 28, 1), 256)
    assert coverage_log10(60_000, count) == pytest.approx(math.log10(60_000) - 784 * math.log10(256), abs=1e-9)
    assert coverage_log10(16, count_space((2, 2), 2)) == pytest.approx(0.0, abs=1e-12)


def test_bad_inputs_raise_with_the_value():
    with pytest.raises(ValueError, match="65,536"):
        enumerate_space((28, 28, 1), 256)
    with pytest.raises(ValueError, match="levels"):
        count_space((2, 2), 1)
    with pytest.raises(ValueError, match=r"\(0, 2\)"):
        count_space((0, 2), 2)
    assert parse_shape("28x28") == (28, 28, 1) and parse_shape("64x64x3") == (64, 64, 3)
    with pytest.raises(typer.BadParameter, match="'28x'"):
        parse_shape("28x")


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # a group, so the verb is invoked by name as in the real CLI
        pass

    register(app)
    return app


def test_cli_prints_the_counts(app):
    runner = CliRunner()
    small = runner.invoke(app, ["space", "--shape", "2x2", "--levels", "2"])
    assert small.exit_code == 0, small.output
    assert "2^4 = 16\n" in small.output and "why not 4 x 2 = 8?" in small.output
    mnist = runner.invoke(app, ["space", "--shape", "28x28x1", "--latent-dim", "16", "--dataset-size", "60000"])
    assert mnist.exit_code == 0, mnist.output
    assert "1,889 digits" in mnist.output and str(256**784) not in mnist.output and "200,704" in mnist.output
    assert "--all-digits prints all 1,889 digits" in mnist.output
    every = runner.invoke(app, ["space", "--shape", "28x28x1", "--all-digits"])
    assert str(256**784) in every.output
    assert "10,000,000,000,000,000 points" in mnist.output and "10^-1883.3" in mnist.output
    huge = runner.invoke(app, ["space", "--shape", "64x64x3"])
    assert "29,593 digits" in huge.output and "too long to print" in huge.output


def test_cli_enumerate_draws_every_image(app, tmp_path):
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(app, ["space", "--shape", "2x2", "--levels", "2", "--enumerate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Drew all 16 images" in result.output
    with Image.open(out) as img:
        assert img.width == img.height and img.width > 4 * 2 * 16  # a 4 x 4 grid of enlarged tiles
    refused = CliRunner().invoke(app, ["space", "--shape", "28x28", "--enumerate", "--out", str(out)])
    assert isinstance(refused.exception, ValueError) and "65,536" in str(refused.exception)
