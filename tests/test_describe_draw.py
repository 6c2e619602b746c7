"""Describe and draw, below the CLI: the vocabulary's parser, the attribute readers and the conditional prior's
known answers on toy data."""
from __future__ import annotations

import numpy as np
import pytest

from latentspace.data import ImageSet
from latentspace.data.vocabulary import Attribute, Vocabulary
from latentspace.latent.conditional import ConditionalPrior
from latentspace.latent.diffusion import DiffusionConfig
from latentspace.latent.readers import fit_reader

MEANS = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
STDS = np.array([0.5, 1.0, 0.3])


def faces_like_vocabulary() -> Vocabulary:
    return Vocabulary((
        Attribute("hair_color", ("black", "brown", "blond")), Attribute("mask_on", ("no", "yes")),
        Attribute("glasses", ("no", "yes")), Attribute("eye_color", ("brown", "blue")),
        Attribute("smile", (), -1.0, 1.0),
    ))


@pytest.mark.parametrize(("text", "expected"), [
    ("black hair, mask on, no glasses", [(0, 0, "black hair"), (1, 1, "mask on"), (2, 0, "no glasses")]),
    ("Blond_Hair ,  no mask", [(0, 2, "blond hair"), (1, 0, "no mask")]),
    ("hair color=brown, glasses=yes, mask on=no", [(0, 1, "brown hair"), (2, 1, "glasses"), (1, 0, "no mask")]),
    ("blue eyes, blond", [(3, 1, "blue eye"), (0, 2, "blond hair")]),
    ("smile = 0.5, no mask on", [(4, 0.5, "smile=0.5"), (1, 0, "no mask")]),
    ("", []),
])
def test_descriptions_parse_to_the_attributes_and_values_they_name(text, expected):
    terms = faces_like_vocabulary().parse(text)
    assert [(t.attribute, t.value, t.text) for t in terms] == expected


def test_a_bare_value_two_attributes_share_is_not_guessed():
    # "brown" is a hair colour and an eye colour: it must be said in full
    with pytest.raises(ValueError, match="unknown term 'brown'"):
        faces_like_vocabulary().parse("brown")


@pytest.mark.parametrize(("text", "message"), [
    ("blak hair", r"unknown term 'blak hair'; nearest known terms: black hair, "),
    ("black hair, blond hair", "'blond hair' and 'black hair' both set hair_color"),
    ("smile=3", r"smile=3: expected a number in -1.5..1.5"),
    ("smile=lots", r"smile=lots: expected a number"),
    ("mask off", "unknown term 'mask off'; nearest known terms: "),
])
def test_parser_errors_are_single_lines_that_say_what_is_known(text, message):
    with pytest.raises(ValueError, match=message) as e:
        faces_like_vocabulary().parse(text)
    assert "\n" not in str(e.value)


def test_an_image_sets_vocabulary_holds_its_labels_and_factors():
    images = np.zeros((4, 1, 8, 8), np.uint8)
    labelled = ImageSet(images, "digits", labels=np.array([0, 7, 3, 7]), class_names=tuple("0123456789"),
                        factors=np.array([[0.1], [0.5], [-0.2], [np.nan]], np.float32), factor_names=("slant",))
    vocab = Vocabulary.of(labelled)
    slant = vocab.attributes[1]
    assert (slant.name, slant.values) == ("slant", ()) and (slant.low, slant.high) == pytest.approx((-0.2, 0.5))
    assert [(t.attribute, t.value) for t in vocab.parse("7")] == [(0, 7.0)]
    targets = vocab.targets(labelled)
    assert targets[:, 0].tolist() == [0, 7, 3, 7] and np.isnan(targets[3, 1])


def test_readers_tell_what_the_codes_hold_and_leave_out_what_they_do_not():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3000, 4))
    held = (z[:, 0] > 0).astype(np.float64)  # written in the codes
    noise = rng.integers(0, 2, 3000).astype(np.float64)  # not in them at all
    size = 0.5 * z[:, 1] + rng.normal(0, 0.1, 3000)  # a continuous factor, residual std 0.1
    yes_no = Attribute("held", ("no", "yes"))
    tr, te = slice(0, 2000), slice(2000, None)
    r_held = fit_reader(yes_no, z[tr], held[tr], z[te], held[te])
    r_noise = fit_reader(Attribute("noise", ("no", "yes")), z[tr], noise[tr], z[te], noise[te])
    r_size = fit_reader(Attribute("size", (), -2.0, 2.0), z[tr], size[tr], z[te], size[te])
    assert r_held.told and r_held.score > 0.97
    assert not r_noise.told and abs(r_noise.score - 0.5) < 0.05
    assert r_size.told and r_size.score > 0.9 and r_size.spread == pytest.approx(0.1, rel=0.25)
    readings = r_size.read(z[te])
    inside = np.mean([r.low <= s <= r.high for r, s in zip(readings, size[te])])
    assert 0.9 < inside < 0.99  # a 95% interval covers about 95% of the held-out values
    yes = r_held.read(np.array([[3.0, 0, 0, 0]]))[0]
    assert yes.text == "held" and yes.probability > 0.95


def test_a_reader_round_trips_through_its_dict():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(600, 3))
    y = (z[:, 2] > 0.3).astype(np.float64)
    a = Attribute("flag", ("no", "yes"))
    reader = fit_reader(a, z[:400], y[:400], z[400:], y[400:])
    again = type(reader).from_dict(reader.to_dict(), a).attach(z[:400], y[:400])
    assert np.allclose(reader.predict(z[400:])[1], again.predict(z[400:])[1])


@pytest.fixture(scope="module")
def toy_prior(one_torch_thread):
    """A conditional prior fitted on a three-component mixture in 2-D, labelled by component."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 6000)
    z = MEANS[y] + rng.normal(size=(6000, 2)) * STDS[y, None]
    config = DiffusionConfig(latent_dim=2, hidden=128, train_steps=1500)
    return ConditionalPrior(config, classes=(3,)).fit(z, y[:, None].astype(np.float32)), z


@pytest.mark.parametrize("component", [0, 1, 2])
def test_conditional_samples_match_their_conditions_mean_and_spread(toy_prior, component):
    prior, _ = toy_prior
    s = prior.sample(np.full((2000, 1), component, np.float32), np.random.default_rng(1), guidance=1.0)
    assert np.abs(s.mean(0) - MEANS[component]).max() < 0.12
    assert s.std(0) == pytest.approx([STDS[component]] * 2, rel=0.25)


def test_guidance_zero_is_the_unconditional_prior(toy_prior):
    prior, z = toy_prior
    s = prior.sample(np.full((3000, 1), 0, np.float32), np.random.default_rng(2), guidance=0.0)
    assert np.abs(s.mean(0) - z.mean(0)).max() < 0.2
    assert s.std(0) == pytest.approx(z.std(0), rel=0.1)
    shares = np.bincount(np.linalg.norm(s[:, None] - MEANS[None], axis=2).argmin(1), minlength=3) / len(s)
    assert np.abs(shares - 1 / 3).max() < 0.05  # every component, not just the asked-for one


def test_guidance_one_and_above_hold_to_the_condition(toy_prior):
    prior, _ = toy_prior
    far = {}
    for g in (0.0, 1.0, 4.0):
        s = prior.sample(np.full((1000, 1), 1, np.float32), np.random.default_rng(3), guidance=g)
        far[g] = float(np.mean(np.linalg.norm(s - MEANS[1], axis=1) > 3.0))
    assert far[0.0] > 0.5 and max(far[1.0], far[4.0]) < 0.02


def test_a_missing_value_leaves_that_attribute_to_the_prior(toy_prior):
    prior, z = toy_prior
    s = prior.sample(np.full((3000, 1), np.nan, np.float32), np.random.default_rng(4), guidance=2.0)
    assert s.std(0) == pytest.approx(z.std(0), rel=0.15)


def test_the_conditional_prior_round_trips_and_refuses_bad_conditions(toy_prior):
    prior, _ = toy_prior
    again = ConditionalPrior.from_state(*prior.state())
    c = np.array([[0.0], [2.0]], np.float32)
    assert np.array_equal(prior.sample(c, np.random.default_rng(5)), again.sample(c, np.random.default_rng(5)))
    with pytest.raises(ValueError, match="holds 3.0, expected a value index 0..2"):
        prior.sample(np.array([[3.0]], np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match="guidance must be a finite number >= 0"):
        prior.sample(c, np.random.default_rng(0), guidance=-1)
