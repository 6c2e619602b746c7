"""The talk as a notebook: notebooks/what_is_latent_space.ipynb runs top to bottom on the zoo models, every
figure and table displays inline, and no outputs are committed."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from latentspace.train.zoo import zoo_models  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "what_is_latent_space.ipynb"
pytestmark = pytest.mark.skipif(not zoo_models(), reason="the notebook runs on the zoo, which this checkout lacks")


def test_the_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_the_notebook_runs_and_shows_every_figure_inline(tmp_path, monkeypatch, mnist_dir):
    # the kernel is this interpreter's: put its folder first so `python` is the virtualenv's
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    shown = {c.source.splitlines()[-1]: {k for o in c.outputs for k in o.get("data", {})} for c in nb.cells
             if c.cell_type == "code"}
    figures = [s for s in shown if s.startswith("ls.") and not s.startswith(("ls.evaluation", "ls.describe"))]
    assert len(figures) >= 8
    for line in figures:
        assert "image/png" in shown[line], f"{line!r} displayed {shown[line]}"
    for line in ("ls.evaluation('zoo:faces')", "ls.describe('zoo:faces', [0])", "explorer"):
        assert "text/html" in shown[line], f"{line!r} displayed {shown[line]}"
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "1,889 digits" in printed and "8,877,736 digits" in printed
