"""The run-level verbs of latentspace.api on tiny real runs: known answers from the model itself, caches that
are reused exactly when they should be."""
from __future__ import annotations

import math

import numpy as np
import pytest
from latent_runs import retrain, run_copy
from PIL import Image
from sklearn.decomposition import PCA

from latentspace import api
from latentspace.latent.codes import decode_latents, encode_images
from latentspace.latent.directions import AttributeDirection
from latentspace.latent.manifold import prior_quantile_grid, project_2d
from latentspace.latent.samplers import GMMSampler
from latentspace.metrics.evaluator import EvaluatorConfig, dataset_heads
from latentspace.metrics.realness import PATHS, pair_table
from latentspace.viz.animate import evolution_frames

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mnist2(tmp_path_factory, mnist_dir):
    return run_copy("mnist2", tmp_path_factory, mnist_dir.parent)


@pytest.fixture(scope="module")
def mnist4(tmp_path_factory, mnist_dir):
    return run_copy("mnist4", tmp_path_factory, mnist_dir.parent)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return run_copy("faces", tmp_path_factory)


def quick_evaluator(run_dir) -> EvaluatorConfig:
    """One pass over the 2,000 training images: enough to give finite, non-trivial confidences."""
    train = api.open_run(run_dir).dataset("train")
    return EvaluatorConfig(train.shape, dataset_heads(train), epochs=1, min_steps=0)


def test_interpolate_paths_end_at_the_decoded_codes_of_the_ends(mnist2):
    run = api.open_run(mnist2)
    model, test = run.model(), run.dataset("test")
    result = api.interpolate(mnist2, 3, 10, steps=6, evaluator_config=quick_evaluator(mnist2))
    z = encode_images(model, test.images[[3, 10]])
    ends = decode_latents(model, z)
    paths = result.paths
    np.testing.assert_array_equal(paths.pixel[[0, -1]], test.images[[3, 10]])
    for name in ("lerp", "slerp"):
        np.testing.assert_array_equal(getattr(paths, name)[[0, -1]], ends)
    np.testing.assert_allclose(paths.z_lerp[[0, -1]], z, rtol=0, atol=1e-6)
    assert result.sources == ("test[3]", "test[10]")
    assert set(result.scores) == set(PATHS)
    for s in result.scores.values():
        assert s.elbo.shape == (6,) and np.isfinite(s.elbo).all() and (s.elbo < 0).all()
        assert ((s.classifier_confidence >= 0.1 - 1e-6) & (s.classifier_confidence <= 1)).all()  # 10 classes
        assert (s.nearest_distance >= 0).all()
    means = result.mean_scores()
    middle = (paths.t >= 0.25 - 1e-6) & (paths.t <= 0.75 + 1e-6)
    assert means["lerp"]["elbo"] == pytest.approx(result.scores["lerp"].elbo[middle].mean())


def test_interpolate_reads_image_files_like_test_images(mnist2, tmp_path):
    test = api.open_run(mnist2).dataset("test")
    Image.fromarray(test.images[3, 0]).save(tmp_path / "three.png")
    from_file = api.interpolate(mnist2, tmp_path / "three.png", 10, steps=4, score=False)
    from_index = api.interpolate(mnist2, 3, 10, steps=4, score=False)
    np.testing.assert_array_equal(from_file.paths.slerp, from_index.paths.slerp)
    assert from_file.scores is None and from_file.sources == (str(tmp_path / "three.png"), "test[10]")
    assert api.image_ref("12") == 12 and api.image_ref(str(tmp_path / "three.png")) == tmp_path / "three.png"
    with pytest.raises(ValueError, match="outside the test split"):
        api.interpolate(mnist2, 0, 2000, score=False)
    with pytest.raises(ValueError, match="missing.png: no such image file"):
        api.interpolate(mnist2, tmp_path / "missing.png", 0, score=False)


def test_interpolation_table_has_three_finite_rows(mnist2):
    table = api.interpolation_table(mnist2, n_pairs=6, steps=5, evaluator_config=quick_evaluator(mnist2))
    assert [row[0] for row in table.rows()] == list(PATHS)
    for s in table.summaries:
        values = [s.classifier_confidence, s.elbo, s.nearest_distance, s.elbo_se, s.nearest_distance_se]
        assert all(math.isfinite(v) for v in values)
    pixel = table.summaries[0]
    assert pixel.nearest_distance > 0  # a cross-fade of two digits is no training image


def test_interpolation_table_is_cached_per_weights_and_arguments(mnist2, quick_evaluator, monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(kwargs["seed"])
        return pair_table(*args, **kwargs)

    monkeypatch.setattr(api.paths, "pair_table", counting)
    (mnist2 / api.paths.PAIRS_FILE).unlink(missing_ok=True)
    first = api.interpolation_table(mnist2, n_pairs=4, steps=5)
    again = api.interpolation_table(mnist2, n_pairs=4, steps=5)
    assert calls == [0] and again.rows() == first.rows() and again.middle == first.middle
    for path in PATHS:
        for score, curve in first.curves[path].items():
            np.testing.assert_allclose(again.curves[path][score], curve, rtol=1e-12)
    api.interpolation_table(mnist2, n_pairs=4, steps=5, seed=1)  # other arguments: measured, and now the cache
    assert calls == [0, 1]
    (mnist2 / api.paths.PAIRS_FILE).write_text("{not json", encoding="utf-8")
    assert api.interpolation_table(mnist2, n_pairs=4, steps=5).rows() == first.rows() and calls == [0, 1, 0]


def test_best_map_keeps_the_map_that_separates_best_and_caches_the_projections(mnist4, monkeypatch):
    (mnist4 / api.maps.MAPS_FILE).unlink(missing_ok=True)
    first = api.best_map(mnist4, n=300)
    assert first.xy.shape == (300, 2) and first.chosen == first.candidates[0]
    assert {c.method for c in first.candidates} == {"pca", "tsne"}
    assert first.chosen.gain == max(c.gain for c in first.candidates) and first.chosen.gain > 0.1  # above always guessing
    monkeypatch.setattr(api.maps, "project_2d", lambda *a: pytest.fail("projected again"))
    again = api.best_map(mnist4, n=300)
    np.testing.assert_array_equal(again.xy, first.xy)
    assert again.chosen == first.chosen


def test_split_codes_are_cached_until_the_model_changes(mnist2, monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return encode_images(*args, **kwargs)

    monkeypatch.setattr(api.common, "encode_images", counting)
    api.codes_path(mnist2, "test").unlink(missing_ok=True)
    first_images, first = api.split_codes(mnist2, "test")
    _, second = api.split_codes(mnist2, "test")
    api.manifold(mnist2, k=3)  # manifold reads the same cache
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    model = api.load(mnist2)
    np.testing.assert_allclose(first, encode_images(model, first_images.images), rtol=0, atol=1e-6)
    retrain(mnist2)
    api.split_codes(mnist2, "test")
    assert len(calls) == 2


def test_manifold_of_a_2d_latent_is_the_prior_quantile_grid(mnist2):
    result = api.manifold(mnist2, k=5)
    (grid,) = result.grids
    model = api.load(mnist2)
    assert grid.name == "grid" and grid.images.shape == (25, 1, 28, 28)
    np.testing.assert_array_equal(grid.latents, prior_quantile_grid(5))
    np.testing.assert_array_equal(grid.images, decode_latents(model, prior_quantile_grid(5)))
    _, z = api.split_codes(mnist2, "test")
    np.testing.assert_array_equal(result.xy, z)
    assert result.method == "latent" and result.labels.shape == (2000,) and result.class_names[0] == "0"


def test_manifold_of_a_4d_latent_spans_planes_and_projects_the_codes(mnist4, monkeypatch):
    result = api.manifold(mnist4, k=4)
    assert [g.name for g in result.grids] == ["plane", "pca_plane"]
    assert all(g.images.shape == (16, 1, 28, 28) and g.latents.shape == (16, 4) for g in result.grids)
    test, z = api.split_codes(mnist4, "test")
    assert len(set(test.labels[list(result.anchors)])) == 3
    assert min(result.anchors) == 0  # the first test image opens the list
    np.testing.assert_allclose(result.xy, project_2d(z, "pca"), rtol=0, atol=1e-5)
    monkeypatch.setattr(api.maps, "MAX_EMBED_POINTS", 60)
    a = api.manifold(mnist4, method="tsne", k=2, seed=1)
    b = api.manifold(mnist4, method="tsne", k=2, seed=1)
    assert a.xy.shape == (60, 2) and len(np.unique(a.index)) == 60 and (np.diff(a.index) > 0).all()
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.labels, test.labels[a.index])
    with pytest.raises(ValueError, match="anchors must be 3 test indices"):
        api.manifold(mnist4, anchors=(0, 1))


def test_evolution_projects_every_epoch_with_the_last_epochs_pca(mnist4, mnist2):
    snapshots = api.open_run(mnist4).snapshots()
    result = api.evolution(mnist4)
    assert result.epochs == (0, 1) and result.xy.shape == (2, 200, 2) and result.projection == "pca"
    pca = PCA(n_components=2, svd_solver="full").fit(snapshots["epoch_0001"])
    for i, key in enumerate(("epoch_0000", "epoch_0001")):
        np.testing.assert_allclose(result.xy[i], pca.transform(snapshots[key]), rtol=0, atol=1e-4)
    assert math.isnan(result.test_elbo[0])
    assert result.test_elbo[1] == pytest.approx(api.open_run(mnist4).metrics()[0]["test_elbo"])
    np.testing.assert_array_equal(result.labels, snapshots["probe_labels"])
    raw = api.evolution(mnist2)
    assert raw.projection == "latent"
    np.testing.assert_array_equal(raw.xy[1], api.open_run(mnist2).snapshots()["epoch_0001"])
    frames = evolution_frames(result)
    assert len(frames) == len(result.epochs) and len({f.size for f in frames}) == 1


def test_attributes_find_mask_on_above_the_majority_baseline(faces):
    (mask,) = api.attributes(faces, names=("mask_on",))
    assert mask.name == "mask_on" and mask.direction.method == "logistic" and mask.n_test == 2000
    assert mask.direction.probe_accuracy > mask.majority_baseline + 0.05
    test = api.open_run(faces).dataset("test")
    share = float(test.factor("mask_on").mean())
    assert mask.majority_baseline == pytest.approx(max(share, 1 - share))
    fits = {f.name: f for f in api.attributes(faces, method="mean")}
    assert {"hair_color=red", "hair_length", "smile", "mask_on"} <= set(fits)
    assert fits["mask_on"].direction.probe_accuracy > fits["mask_on"].majority_baseline + 0.05
    smile = fits["smile"]  # continuous: top vs bottom tercile, the middle third left out
    assert smile.n_test < 2000 * 0.75 and smile.majority_baseline < 0.6


def test_conditional_directions_are_orthogonal_to_the_conditions(faces):
    fits = api.attributes(faces, method="mean", condition_on=("glasses", "hair_length"))
    by_name = {f.name: f.direction for f in fits}
    for name in ("glasses", "hair_length"):
        assert by_name[name].method == "mean" and by_name[name].conditioned_on == ()
    mask = by_name["mask_on"]
    assert mask.method == "conditional" and mask.conditioned_on == ("glasses", "hair_length")
    for name in ("glasses", "hair_length"):
        assert abs(mask.vector @ by_name[name].vector) < 1e-9
    with pytest.raises(ValueError, match="has no attribute 'beard'"):
        api.attributes(faces, condition_on=("beard",))


def test_edit_moves_the_code_along_the_saved_direction(faces):
    run = api.open_run(faces)
    model, test = run.model(), run.dataset("test")
    z = encode_images(model, test.images[[5]])[0]
    vector = np.zeros(8)
    vector[2] = 1.0
    api.save_run_directions(run, [AttributeDirection("along_z2", "mean", vector, 0.0, 0.5, 0.9)])
    try:
        images = api.edit(faces, 5, "along_z2", [-2.0, 0.0, 3.0])
        with pytest.raises(ValueError, match="has no direction 'mask_on'; it has along_z2"):
            api.edit(faces, 5, "mask_on", [1.0])
    finally:
        (faces / api.DIRECTIONS_FILE).unlink()
    expected_z = np.stack([z + s * 0.5 * vector for s in (-2.0, 0.0, 3.0)]).astype(np.float32)
    np.testing.assert_array_equal(images, decode_latents(model, expected_z))
    assert images.shape == (3, 3, 32, 32)
    fitted = api.edit(faces, 5, "mask_on", [0.0, 2.0])  # no directions.json: fitted on the fly
    np.testing.assert_array_equal(fitted[0], decode_latents(model, z[None])[0])
    assert not (faces / api.DIRECTIONS_FILE).exists()


def test_traverse_sweeps_each_axis_around_the_code(faces, mnist2):
    values = [-1.0, 0.0, 2.0]
    result = api.traverse(faces, 7, values)
    run = api.open_run(faces)
    model, test = run.model(), run.dataset("test")
    z0 = encode_images(model, test.images[[7]])[0]
    np.testing.assert_allclose(result.z0, z0, rtol=0, atol=1e-6)
    assert result.grid.shape == (8, 3, 3, 32, 32) and result.source == "test[7]"
    shifted = z0.copy()
    shifted[4] += 2.0
    np.testing.assert_array_equal(result.grid[4, 2], decode_latents(model, shifted[None])[0])
    np.testing.assert_array_equal(result.grid[0, 1], decode_latents(model, z0[None])[0])
    table = result.table
    assert table.matrix.shape == (8, len(test.factor_names)) and table.factor_names == test.factor_names
    assert ((table.matrix >= 0) & (table.matrix <= 1 + 1e-9)).all()
    digits = api.traverse(mnist2, 0, values)
    assert digits.table.factor_names == ("label",) and digits.table.matrix.shape == (2, 1)


def test_export_writes_the_cached_codes_with_metadata(faces, tmp_path):
    result = api.export(faces, tmp_path / "tb", n=50)
    assert (result.n, result.latent_dim) == (50, 8) and "mask_on" in result.columns
    _, z = api.split_codes(faces, "test")
    np.testing.assert_allclose(np.loadtxt(tmp_path / "tb" / "tensors.tsv", delimiter="\t"), z[:50], rtol=1e-6)
    rows = (tmp_path / "tb" / "metadata.tsv").read_text().splitlines()
    assert len(rows) == 51 and rows[0].split("\t") == list(result.columns)
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == [
        "metadata.tsv", "projector_config.pbtxt", "sprite.png", "tensors.tsv"]


def test_gmm_sampler_is_cached_and_reloaded_identically(mnist4, monkeypatch):
    (mnist4 / api.GMM_FILE).unlink(missing_ok=True)
    first = api.gmm_sampler(mnist4, components=3)
    assert (mnist4 / api.GMM_FILE).is_file()
    fits = []
    original = GMMSampler.fit
    monkeypatch.setattr(GMMSampler, "fit", lambda self, z: fits.append(1) or original(self, z))
    again = api.gmm_sampler(mnist4, components=3)
    assert fits == []
    np.testing.assert_array_equal(again.means_, first.means_)
    np.testing.assert_array_equal(again.sample(7, np.random.default_rng(4)), first.sample(7, np.random.default_rng(4)))
    other = api.gmm_sampler(mnist4, components=2)
    assert fits == [1] and other.means_.shape == (2, 4)
