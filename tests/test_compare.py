"""`latentspace compare`: one table and one page over several runs, every number from their cached evaluations
and measured under one protocol; runs under different protocols or data are refused."""
from __future__ import annotations

import json
import shutil
import time

import pytest
from conftest import assert_page_loads_cleanly
from typer.testing import CliRunner

from quick import quick_evaluator as one_epoch_evaluator

from latentspace import api
from latentspace.api.compare import compare, row_values
from latentspace.cli.main import app

pytestmark = pytest.mark.usefixtures("one_torch_thread", "quick_evaluator")

runner = CliRunner()
CHEAP = ["--k", "4", "--iw-images", "16", "--samples", "64", "--diffusion-steps", "30"]
OPTIONS = api.EvaluateOptions(iw_k=4, iw_n=16, samples=64, diffusion_steps=30)


def ok(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_dir):
    """Two tiny MNIST runs of different families, the first evaluated, the second not yet."""
    root = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp, one_epoch_evaluator(mp):
        for name, family in (("vae", "vae"), ("wae", "wae-mmd")):
            ok("train", "--out", root / name, "--data", "mnist", "--data-dir", mnist_dir, "--n", 300, "--epochs", 2,
               "--batch-size", 50, "--model", family, "--latent-dim", 4, "--width", 4, "--hidden", 32,
               "--device", "cpu")
        ok("evaluate", root / "vae", *CHEAP, "--device", "cpu")
    return root


def test_compare_reads_cached_evaluations_and_measures_the_missing_one_under_their_protocol(runs):
    c = compare([runs / "vae", runs / "wae"])
    assert c.options.iw_k == 4 and c.options.samples == 64  # the vae's protocol, taken for the wae as well
    saved = json.loads((runs / "vae" / "evaluation.json").read_text())["evaluation"]
    vae, wae = (row_values(r) for r in c.rows)
    assert vae["test MSE"] == saved["reconstruction"]["mse"]
    assert vae["IW NLL k=4"] == saved["reconstruction"]["iw_nll_nats"]
    assert vae["objective"] == "vae" and wae["objective"] == "wae-mmd"
    assert wae["IW NLL k=4"] is None  # no posterior density: no bound, a dash in the table
    assert json.loads((runs / "wae" / "evaluation.json").read_text())["key"]["options"]["iw_k"] == 4
    assert c.rows[0].train_minutes > 0 and c.rows[0].parameters > 0


def test_cli_prints_the_table_writes_the_page_and_answers_fast_when_cached(runs, tmp_path):
    ok("compare", runs / "vae", runs / "wae", "--out", tmp_path / "first.html", "--device", "cpu")
    six = []
    for i in range(3):  # six runs, each with its evaluation and pictures cached
        for name in ("vae", "wae"):
            six.append(tmp_path / f"{name}{i}")
            shutil.copytree(runs / name, six[-1])
    start = time.perf_counter()
    ok("compare", *six, "--out", tmp_path / "six.html", "--device", "cpu")
    seconds = time.perf_counter() - start
    assert seconds < 5.0, seconds  # the target for six cached runs
    result = ok("compare", runs / "vae", runs / "wae", "--out", tmp_path / "page.html", "--device", "cpu")
    assert "wae-mmd" in result.output and "IW NLL k=4" in result.output
    html = (tmp_path / "page.html").read_text()
    assert html.count("<img") == 2 + 1 + 2 and "rate against distortion" not in html  # plots are images
    assert "http://" not in html and "https://" not in html


def test_runs_evaluated_under_different_protocols_are_refused(runs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(runs / "vae", other)
    ok("evaluate", other, "--k", "8", "--iw-images", "16", "--samples", "64", "--diffusion-steps", "30",
       "--device", "cpu", "--refresh")
    result = runner.invoke(app, ["compare", str(runs / "vae"), str(other), "--out", str(tmp_path / "x.html")])
    assert result.exit_code != 0
    assert "evaluated with iw_k=8" in str(result.exception) and "iw_k=4" in str(result.exception)
    assert not (tmp_path / "x.html").exists()


def test_runs_on_different_data_are_refused(runs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(runs / "vae", other)
    config = json.loads((other / "config.json").read_text())
    config["data"]["n"] = 500
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="n=500"):
        compare([runs / "vae", other])


def test_a_run_given_twice_is_refused(runs):
    with pytest.raises(ValueError, match="given twice"):
        compare([runs / "vae", runs / "vae"])


def test_a_folder_that_is_no_run_is_one_line(tmp_path):
    result = runner.invoke(app, ["compare", str(tmp_path / "missing")])
    assert result.exit_code != 0 and "missing" in str(result.exception)


def test_compare_page_loads_cleanly_in_chromium(runs, tmp_path, browser):
    ok("compare", runs / "vae", runs / "wae", "--out", tmp_path / "page.html", "--device", "cpu")
    assert_page_loads_cleanly(browser, tmp_path / "page.html", images=5)
