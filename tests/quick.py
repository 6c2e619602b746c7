"""A quick evaluator for tests that need one: one pass over the training images instead of the default 600
steps (the evaluator's own quality is tested in test_evaluator.py)."""
from __future__ import annotations

import contextlib

from latentspace.metrics import evaluator as evaluator_module
from latentspace.metrics.evaluator import EvaluatorConfig, dataset_heads

_real = evaluator_module.evaluator_for_run


def _quick(run_dir, train_set, test_set=None, device="cpu", progress=None, config=None, shared=tuple):
    config = EvaluatorConfig(train_set.shape, dataset_heads(train_set), epochs=1, min_steps=0)
    return _real(run_dir, train_set, test_set, device, progress, config, shared)


@contextlib.contextmanager
def quick_evaluator(monkeypatch):
    """Within the block, every run's evaluator trains for one epoch."""
    monkeypatch.setattr(evaluator_module, "evaluator_for_run", _quick)
    yield
