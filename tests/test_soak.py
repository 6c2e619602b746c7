"""Exact resume survives kill -9 at random moments (issue 11): the soak in tests/soak.py, a few kills long."""
from __future__ import annotations

import pytest

from soak import run_uninterrupted, soak

pytestmark = pytest.mark.slow


def test_random_kills_then_resume_equal_an_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    run_uninterrupted(reference)
    result = soak(tmp_path / "soaked", reference, kills=2, seed=11)
    assert result.kills >= 2 and result.runs >= 1
    assert result.identical_weights, "weights differ from the uninterrupted run"
    assert result.identical_metrics, "test ELBO per epoch differs from the uninterrupted run"
