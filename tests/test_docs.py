"""The documentation site builds offline in strict mode (a broken link or a missing reference fails), and the
built wheel carries the zoo."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from latentspace import api
from latentspace.train.zoo import PACKAGE_DIR, zoo_models

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_the_docs_build_strictly_with_the_api_reference(tmp_path):
    pytest.importorskip("mkdocs")
    done = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    page = (tmp_path / "site" / "reference" / "api" / "index.html").read_text()
    ids = set(re.findall(r'id="latentspace\.api\.([\w.]+)"', page))
    verbs = [n for n in api.__all__ if callable(getattr(api, n)) and not n.isupper() and n not in ("Device", "ImageRef")]
    missing = [n for n in verbs if n not in ids and not any(i.endswith("." + n) for i in ids)]
    assert len(verbs) > 60 and not missing, missing
    for page in ("zoo", "notebook", "models", "evaluation", "guarantees"):
        assert (tmp_path / "site" / page / "index.html").is_file(), page


@pytest.mark.skipif(not zoo_models(), reason="this checkout ships no zoo")
def test_the_wheel_carries_the_zoo_within_its_budget(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("latentspace-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = {i.filename: i.file_size for i in z.infolist()}
    shipped = {n: s for n, s in names.items() if n.startswith("latentspace/pretrained/")}
    expected = {f"latentspace/pretrained/{m.name}/{rel}" for m in zoo_models().values() for rel in m.files}
    assert expected | {"latentspace/pretrained/zoo.json"} == set(shipped)
    total = sum(shipped.values())
    print(f"wheel {wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB, the zoo inside it {total / 1e6:.1f} MB")
    assert total <= 30_000_000
    assert total == sum(p.stat().st_size for p in PACKAGE_DIR.rglob("*") if p.is_file())
