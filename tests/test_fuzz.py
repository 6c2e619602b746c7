"""Property-based fuzzing of every parser that reads outside bytes (targets in tests/fuzz_targets.py).

Each parser must load a case correctly or refuse it with a one-line ValueError. ~200 cases per parser
here, so the file runs in well under a minute; benchmarks/fuzz.py runs the same targets 10,000+ times
each with hang and memory limits.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_targets import TARGETS, IdxCase, Target, outcome

CASES = 200


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_loads_or_refuses_with_a_value_error(name):
    target = TARGETS[name]

    # derandomize: CI sees the same cases every run (benchmarks/fuzz.py explores beyond them); database=None
    # keeps .hypothesis/ out of the working tree; a deadline of 10 s is the benchmark's definition of a hang.
    @settings(max_examples=CASES, deadline=10_000, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=target.cases())
    def check(case):
        with tempfile.TemporaryDirectory() as workdir:
            crash = outcome(target, case, Path(workdir))
        assert crash is None, f"{name}: {crash}"

    check()


def test_the_oracles_can_fail():
    """The harness reports wrong results and non-ValueErrors, so a passing fuzz run means something."""

    wrong = IdxCase(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07", 2049, np.array([8], np.uint8), built=True)
    with tempfile.TemporaryDirectory() as workdir:
        assert outcome(TARGETS["idx"], wrong, Path(workdir)).startswith("AssertionError")
        boom = Target("boom", "", (), lambda: st.none(), lambda case, wd: {}["missing"])
        assert outcome(boom, None, Path(workdir)).startswith("KeyError at test_fuzz.py")
        lines = Target("lines", "", (), lambda: st.none(), lambda case, wd: (_ for _ in ()).throw(ValueError("a\nb")))
        assert outcome(lines, None, Path(workdir)).startswith("multi-line ValueError")
