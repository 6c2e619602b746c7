"""`evaluate` on tiny real runs: every number against a direct computation or a known bound, the cache reused
exactly when it should be, and clear errors."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from latent_runs import retrain, run_copy
from quick import quick_evaluator

from latentspace import api
from latentspace.api import measures
from latentspace.api.calibration import LocateOptions
from latentspace.api.evaluate import EVALUATION_FILE, FORMAT, EvaluateOptions, Evaluation, evaluation_rows
from latentspace.api.ood import CONSTRUCTED, constructed_sets
from latentspace.data.transforms import to_float
from latentspace.latent.codes import decode_latents
from latentspace.metrics.likelihood import importance_weighted_nll
from latentspace.metrics.sharpness import hf_ratio
from latentspace.metrics.structure import mean_ssim
from latentspace.utils.files import read_json, write_json

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK = EvaluateOptions(iw_k=8, iw_n=100, samples=300, diffusion_steps=200, ood_k=8, ood_n=200)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    run = run_copy("faces", tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp, quick_evaluator(mp):
        result = api.evaluate(run, QUICK)
    return run, result


def test_reconstruction_numbers_match_a_direct_computation(faces):
    run, ev = faces
    test, z = api.split_codes(run, "test")
    model = api.load(run)
    mse = float(((to_float(decode_latents(model, z)) - to_float(test.images)) ** 2).mean())
    assert ev.reconstruction.mse == pytest.approx(mse, rel=1e-6)
    assert ev.reconstruction.psnr_db == pytest.approx(10 * math.log10(1 / mse), rel=1e-9)
    assert ev.reconstruction.n == len(test) and ev.reconstruction.iw_n == 100 and ev.reconstruction.iw_k == 8
    # The IW bound is an upper bound on the NLL no looser than -ELBO (ELBO over all test images: a loose check).
    assert ev.reconstruction.iw_nll_nats < -ev.reconstruction.elbo_nats + 5.0
    assert ev.reconstruction.binarized_iw_nll_nats is None
    recon = decode_latents(model, z)
    assert ev.reconstruction.ssim == pytest.approx(mean_ssim(recon, test.images), rel=1e-9)
    assert 0 < ev.reconstruction.ssim < 1
    assert ev.reconstruction.hf_ratio == pytest.approx(hf_ratio(recon, test.images), rel=1e-9)
    assert 0 < ev.reconstruction.hf_ratio < 1  # a one-epoch decoder blurs
    rows = {r.measure: r.value for r in evaluation_rows(ev) if r.section == "reconstruction"}
    assert rows["test SSIM"] == f"{ev.reconstruction.ssim:.4f}"
    assert "window of 11" in ev.reconstruction.protocol


def test_compression_compares_the_model_with_pca_at_every_size(faces):
    _, ev = faces
    c = ev.compression
    assert c.pca.components == (1, 2, 4, 8, 16, 32, 64)
    assert all(a >= b - 1e-9 for a, b in zip(c.pca.mse, c.pca.mse[1:]))  # more components never reconstruct worse
    match = c.pca_to_match
    if match is None:
        assert min(c.pca.mse) > c.model_mse
    else:
        k = c.pca.components.index(match)
        assert c.pca.mse[k] <= c.model_mse and (k == 0 or c.pca.mse[k - 1] > c.model_mse)


def test_probes_disentanglement_and_edits_cover_every_factor(faces):
    _, ev = faces
    assert {p.target for p in ev.probes} == {"hair_color", "hair_length", "eye_color", "skin_tone", "mask_on", "glasses"}
    for p in ev.probes:
        assert 0 <= p.majority_accuracy <= 1 and p.knn_accuracy > p.majority_accuracy - 0.05
    d = ev.disentanglement
    assert d is not None and "mask_on" in d.factors and "smile" in d.factors
    assert all(0 <= v <= 1 for v in (d.mig, d.dci_disentanglement, d.dci_completeness, d.sap))
    assert {a.head for a in ev.evaluator_accuracy} == {p.target for p in ev.probes}
    names = {e.attribute for e in ev.edits}
    assert {"mask_on", "glasses", "hair_color=blond"} <= names
    for e in ev.edits:
        assert 0 <= e.already <= 1 and 0 <= e.success <= 1 and e.n > 0


def test_generation_floor_is_closer_than_samples_of_a_one_epoch_model(faces):
    _, ev = faces
    gen = ev.generation
    assert gen is not None and gen.n == 300
    assert [s.name for s in gen.samplers] == ["prior N(0, I)", "GMM", "latent diffusion"]
    assert all(s.seconds > 0 for s in gen.samplers) and gen.floor.seconds == 0
    for s in gen.samplers:
        assert gen.floor.frechet < s.frechet
        assert 0 <= s.precision <= 1 and 0 <= s.recall <= 1
    assert gen.floor.precision > 0.5 and gen.floor.recall > 0.5


def test_the_manifold_check_judges_constructed_sets_with_the_calibration_locate_reads(faces):
    run, ev = faces
    m = ev.manifold
    assert (m.score, m.percentile, m.k, m.n_other) == (api.DEFAULT_SCORE, 99.0, 8, 200)
    assert tuple(s.name for s in m.sets) == CONSTRUCTED
    noise = m.sets[0]
    assert noise.auroc > 0.99 and noise.called_off > 0.9
    assert all(0.5 < s.auroc <= 1 and 0 <= s.called_off <= 1 for s in m.sets)
    opened = api.open_run(run)
    cached = api.calibration(opened, opened.model(), LocateOptions(k=8), compute=False)
    assert cached is not None and cached.threshold(m.score) == pytest.approx(m.threshold)
    rows = [r for r in evaluation_rows(ev) if r.section == "on the manifold"]
    assert [r.value for r in rows] == [f"{s.auroc:.3f} / {s.called_off:.3f}" for s in m.sets]


def test_constructed_sets_are_noise_flips_and_salt_and_pepper():
    images = np.random.default_rng(0).integers(30, 220, (50, 3, 16, 16), dtype=np.uint8)
    sets = constructed_sets(images, seed=1)
    assert tuple(sets) == CONSTRUCTED and all(v.shape == images.shape and v.dtype == np.uint8 for v in sets.values())
    np.testing.assert_array_equal(sets["flipped upside down"][:, :, 0], images[:, :, -1])
    salted = sets["20% salt and pepper"]
    changed = (salted != images).any(axis=1)  # per pixel, all channels alike
    assert changed.mean() == pytest.approx(0.2, abs=0.02)
    assert set(np.unique(salted.transpose(0, 2, 3, 1)[changed])) == {0, 255}
    np.testing.assert_array_equal(constructed_sets(images, seed=1)["uniform noise"], sets["uniform noise"])


def test_evaluation_is_cached_and_round_trips_through_json(faces, monkeypatch):
    run, ev = faces
    monkeypatch.setattr(measures, "reconstruction", lambda *a, **k: pytest.fail("measured again"))
    again = api.evaluate(run, QUICK)
    assert again == Evaluation.from_dict(ev.to_dict())
    assert api.cached_evaluation(run, QUICK) == again
    assert api.cached_evaluation(run, None) == again  # whatever options it was measured with
    assert api.cached_evaluation(run, EvaluateOptions(iw_k=9, iw_n=100, samples=300, diffusion_steps=200)) is None
    rows = evaluation_rows(again)
    assert any(r.section == "generation" for r in rows) and all(r.value for r in rows)


def test_an_evaluation_cached_before_ssim_is_measured_again_not_misread(faces):
    """A file from format 4 (no SSIM, no high-frequency ratio) is not this format's: no cached evaluation,
    whatever options are asked for; a file of this format missing a field is unreadable, also None."""
    run, _ = faces
    path = run / EVALUATION_FILE
    saved = read_json(path)
    old = {"key": {**saved["key"], "format": "latentspace.evaluation/4"},
           "evaluation": copy.deepcopy(saved["evaluation"])}
    old["evaluation"]["reconstruction"] = {k: v for k, v in saved["evaluation"]["reconstruction"].items()
                                           if k not in ("ssim", "hf_ratio")}
    try:
        write_json(path, old)
        assert FORMAT != old["key"]["format"]
        assert api.cached_evaluation(run, QUICK) is None and api.cached_evaluation(run, None) is None
        write_json(path, {**old, "key": saved["key"]})
        assert api.cached_evaluation(run, QUICK) is None
    finally:
        write_json(path, saved)
    assert api.cached_evaluation(run, QUICK) is not None


def test_changed_weights_invalidate_the_cached_evaluation(faces):
    run, _ = faces
    before = retrain(run)
    try:
        assert api.cached_evaluation(run, QUICK) is None
    finally:
        (run / "model.safetensors").write_bytes(before)
    assert api.cached_evaluation(run, QUICK) is not None


def test_binarized_bound_on_mnist(tmp_path_factory, mnist_dir):
    run = run_copy("mnist4", tmp_path_factory, mnist_dir.parent)
    with pytest.MonkeyPatch.context() as mp, quick_evaluator(mp):
        ev = api.evaluate(run, EvaluateOptions(iw_k=4, iw_n=50, samples=200, binarized=True, diffusion_steps=200))
    r = ev.reconstruction
    assert r.binarized_iw_nll_nats is not None and math.isfinite(r.binarized_iw_nll_nats)
    assert r.binarized_iw_nll_nats != r.iw_nll_nats
    assert ev.disentanglement is None and any("factors" in n for n in ev.notes)
    p = ev.probes[0]
    assert [p.target for p in ev.probes] == ["label"] and p.knn_accuracy > 2 * p.majority_accuracy


def test_binarize_keeps_black_and_white_and_the_mean_intensity():
    images = np.zeros((2, 1, 50, 50), np.uint8)
    images[0] = 255
    images[1] = 64
    b = measures.binarize(images, seed=3)
    assert set(np.unique(b)) <= {0, 255} and (b[0] == 255).all()
    assert b[1].mean() / 255 == pytest.approx(64 / 255, abs=0.03)
    np.testing.assert_array_equal(b, measures.binarize(images, seed=3))


def test_iw_bound_tightens_as_k_grows(tmp_path_factory, mnist_dir):
    run = run_copy("mnist4", tmp_path_factory, mnist_dir.parent)
    model, (test, _) = api.load(run), api.split_codes(run, "test")
    images = test.images[:200]
    nll = [importance_weighted_nll(model, images, k=k, generator=torch.Generator().manual_seed(0)).nll_nats
           for k in (1, 10, 100)]
    assert nll[0] > nll[1] > nll[2]


def test_bad_options_are_value_errors():
    with pytest.raises(ValueError, match="iw_k must be >= 1"):
        EvaluateOptions(iw_k=0)
    with pytest.raises(ValueError, match="samples"):
        EvaluateOptions(samples=1)
    assert EvaluateOptions().resolved(28).iw_k == 1000 and EvaluateOptions().resolved(64).iw_k == 100
