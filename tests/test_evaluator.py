"""The evaluator classifier: accuracy on real MNIST and on known synthetic attributes, persistence, caching."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from metrics_fixtures import mnist_evaluator, mnist_split

from latentspace.data import ImageSet
from latentspace.metrics import evaluator as ev_module
from latentspace.metrics.evaluator import (
    CACHE_DIR,
    LABEL_HEAD,
    WEIGHTS,
    EvaluatorConfig,
    Head,
    build_evaluator,
    dataset_heads,
    evaluator_for_run,
    load_evaluator,
    save_evaluator,
    shared_from,
    train_evaluator,
)

SIDE = 16


def squares(n: int, seed: int) -> ImageSet:
    """Noisy 16x16 grey images with a bright 4x4 square at the top-left and/or bottom-right (each present with
    probability 1/2, independently), plus a continuous 'noise' factor that must not become a head."""
    rng = np.random.default_rng(seed)
    top_left, bottom_right = rng.integers(0, 2, n), rng.integers(0, 2, n)
    noise = rng.uniform(0, 80, n)
    images = rng.uniform(0, 1, (n, 1, SIDE, SIDE)) * noise[:, None, None, None]
    images[top_left == 1, :, 1:5, 1:5] = 230
    images[bottom_right == 1, :, 11:15, 11:15] = 230
    factors = np.stack([top_left, bottom_right, noise / 80], axis=1).astype(np.float32)
    return ImageSet(
        images=images.astype(np.uint8), name="squares", factors=factors,
        factor_names=("top_left", "bottom_right", "noise"),
        factor_values={"top_left": ("no", "yes"), "bottom_right": ("no", "yes")},
    )


@pytest.fixture(scope="module")
def square_sets():
    return squares(2000, seed=0), squares(500, seed=1)


def square_config(train: ImageSet, **overrides) -> EvaluatorConfig:
    return EvaluatorConfig(image_shape=train.shape, heads=dataset_heads(train), **{"min_steps": 120, **overrides})


@pytest.fixture(scope="module")
def square_evaluator(square_sets):
    train, test = square_sets
    return train_evaluator(train, test, square_config(train))


def test_mnist_evaluator_reaches_95_percent_on_held_out_digits(mnist_dir):
    evaluator = mnist_evaluator(mnist_dir)
    test = mnist_split(mnist_dir, "test").subset(slice(0, 2000))
    accuracy = evaluator.accuracy(test)
    assert list(accuracy) == [LABEL_HEAD]
    assert accuracy[LABEL_HEAD] >= 0.95
    assert evaluator.test_accuracy_ == accuracy


def test_mnist_heads_are_the_labels_with_their_class_names(mnist_dir):
    heads = dataset_heads(mnist_split(mnist_dir, "test"))
    assert heads == (Head(LABEL_HEAD, 10, tuple(str(i) for i in range(10))),)


def test_two_binary_attributes_are_each_learned(square_sets, square_evaluator):
    _, test = square_sets
    assert [h.name for h in square_evaluator.config.heads] == ["top_left", "bottom_right"]  # not 'noise'
    accuracy = square_evaluator.accuracy(test)
    assert accuracy["top_left"] >= 0.95 and accuracy["bottom_right"] >= 0.95


def test_predict_proba_rows_are_distributions_and_max_prob_is_their_max(square_sets, square_evaluator):
    _, test = square_sets
    images = test.images[:37]
    every = square_evaluator.predict_proba(images)
    one = square_evaluator.predict_proba(images, head="bottom_right")
    assert set(every) == {"top_left", "bottom_right"} and one.shape == (37, 2) and one.dtype == np.float32
    np.testing.assert_array_equal(one, every["bottom_right"])
    np.testing.assert_allclose(every["top_left"].sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(square_evaluator.max_prob(images, "top_left"), every["top_left"].max(1))
    # Batching does not change the answer.
    np.testing.assert_allclose(square_evaluator.predict_proba(images, "top_left", batch_size=5), every["top_left"],
                               atol=1e-6)


def test_max_prob_defaults_to_the_label_head_else_the_first(square_evaluator):
    assert square_evaluator.config.head(None).name == "top_left"
    config = EvaluatorConfig((1, 16, 16), (Head("a", 2, ("x", "y")), Head(LABEL_HEAD, 3, ("p", "q", "r"))))
    assert config.head(None).name == LABEL_HEAD
    with pytest.raises(ValueError, match="no head 'b'"):
        config.head("b")


def test_wrong_image_shape_or_dtype_is_a_value_error(square_evaluator):
    with pytest.raises(ValueError, match=r"\(1, 28, 28\).*expected \(1, 16, 16\)"):
        square_evaluator.predict_proba(np.zeros((2, 1, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        square_evaluator.predict_proba(np.zeros((2, 1, 16, 16), np.float32))


def test_save_then_load_gives_identical_probabilities(tmp_path, square_sets, square_evaluator):
    _, test = square_sets
    save_evaluator(square_evaluator, tmp_path)
    loaded = load_evaluator(tmp_path)
    assert loaded.config == square_evaluator.config
    assert loaded.test_accuracy_ == square_evaluator.test_accuracy_
    before, after = square_evaluator.predict_proba(test.images), loaded.predict_proba(test.images)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


def test_truncated_weights_are_a_value_error_naming_the_file(tmp_path, square_evaluator):
    save_evaluator(square_evaluator, tmp_path)
    data = (tmp_path / WEIGHTS).read_bytes()
    (tmp_path / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="model.safetensors"):
        load_evaluator(tmp_path)


def test_config_round_trips_and_rejects_bad_heads():
    config = EvaluatorConfig((3, 64, 64), (Head("mask_on", 2, ("no", "yes")),), width=8, epochs=1)
    assert EvaluatorConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unique"):
        EvaluatorConfig((1, 16, 16), (Head("a", 2, ("x", "y")), Head("a", 2, ("x", "y"))))
    with pytest.raises(ValueError, match="'a' needs n_classes >= 2 and one value name per class"):
        EvaluatorConfig((1, 16, 16), (Head("a", 3, ("x", "y")),))
    with pytest.raises(ValueError, match="heads is empty"):
        EvaluatorConfig((1, 16, 16), ())


def test_initial_weights_follow_the_seed_and_leave_the_global_rng_alone():
    config = EvaluatorConfig((1, 16, 16), (Head("a", 2, ("x", "y")),), seed=3)
    state = torch.random.get_rng_state()
    a, b = build_evaluator(config), build_evaluator(config)
    c = build_evaluator(EvaluatorConfig((1, 16, 16), (Head("a", 2, ("x", "y")),), seed=4))
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
        if name.endswith("weight"):
            assert not torch.equal(pa, pc)


class Recorder:
    def __init__(self) -> None:
        self.total, self.advanced, self.closed = None, 0, False

    def start(self, total, description):
        self.total = total

    def advance(self, n=1, **info):
        self.advanced += n

    def close(self):
        self.closed = True


def test_training_is_reproducible_and_reports_every_step(square_sets, square_evaluator):
    train, test = square_sets
    progress = Recorder()
    again = train_evaluator(train, None, square_config(train), progress=progress)
    np.testing.assert_array_equal(again.predict_proba(test.images, "top_left"),
                                  square_evaluator.predict_proba(test.images, "top_left"))
    # 2000 images in batches of 64: 32 steps an epoch; min_steps 120 asks for 4 epochs.
    assert progress.total == progress.advanced == 128 and progress.closed
    assert again.test_accuracy_ is None


def test_a_set_without_labels_or_discrete_factors_has_no_evaluator(tmp_path):
    bare = ImageSet(images=np.zeros((4, 1, 16, 16), np.uint8), name="bare")
    assert dataset_heads(bare) == ()
    assert evaluator_for_run(tmp_path, bare) is None
    assert not (tmp_path / CACHE_DIR).exists()
    with pytest.raises(ValueError, match="'bare' has no labels and no discrete factors"):
        train_evaluator(bare)


def test_the_run_cache_is_reused_until_its_key_changes(tmp_path, monkeypatch, square_sets):
    train, test = square_sets
    calls = []
    real_train = ev_module.train_evaluator
    monkeypatch.setattr(ev_module, "train_evaluator", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    config = square_config(train, min_steps=30)

    first = evaluator_for_run(tmp_path, train, test, config=config)
    weights = tmp_path / CACHE_DIR / WEIGHTS
    stamp = weights.stat().st_mtime_ns
    second = evaluator_for_run(tmp_path, train, test, config=config)
    assert len(calls) == 1 and weights.stat().st_mtime_ns == stamp
    assert second.test_accuracy_ == first.test_accuracy_
    np.testing.assert_array_equal(second.predict_proba(test.images, "top_left"),
                                  first.predict_proba(test.images, "top_left"))

    evaluator_for_run(tmp_path, train.subset(slice(0, 1000)), test, config=config)  # other data: retrain
    evaluator_for_run(tmp_path, train.subset(slice(0, 1000)), test, config=square_config(train, min_steps=20))
    assert len(calls) == 3
    assert load_evaluator(tmp_path / CACHE_DIR).config.min_steps == 20


def test_a_shared_evaluator_of_the_same_data_is_copied_not_retrained(tmp_path, monkeypatch, square_sets):
    train, test = square_sets
    config = square_config(train, min_steps=30)
    zoo = evaluator_for_run(tmp_path / "zoo", train, test, config=config)
    calls = []
    real_train = ev_module.train_evaluator
    monkeypatch.setattr(ev_module, "train_evaluator", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    asked = []
    shared = lambda: asked.append(1) or [("zoo:squares", tmp_path / "zoo" / CACHE_DIR)]  # noqa: E731

    reused = evaluator_for_run(tmp_path / "run", train, test, config=config, shared=shared)
    assert calls == [] and shared_from(tmp_path / "run") == "zoo:squares"
    assert reused.test_accuracy_ == zoo.test_accuracy_
    np.testing.assert_array_equal(reused.features(test.images), zoo.features(test.images))
    assert load_evaluator(tmp_path / "run" / CACHE_DIR).test_accuracy_ == zoo.test_accuracy_  # the run's own copy

    other = train.subset(slice(0, 1000))  # other data: the shared one does not fit, and a new one is trained
    evaluator_for_run(tmp_path / "other", other, test, config=config, shared=shared)
    assert calls == [1] and shared_from(tmp_path / "other") is None
    evaluator_for_run(tmp_path / "run", train, test, config=config, shared=shared)  # its own copy now: not asked
    assert asked == [1, 1]
