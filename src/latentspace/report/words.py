"""The report's "pixels or words" section (step 4 of ../shared/STORY.md): one test image described twice, by its
first pixel values and in the run's own words read off its code, the words checked against the truth, and a
grid drawn back from those words by the conditional latent-diffusion prior."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from latentspace import api
from latentspace.api import drawing
from latentspace.data.vocabulary import Vocabulary
from latentspace.latent.readers import AttributeReader
from latentspace.report.parts import Section, Sources, Table
from latentspace.report.sections import png, tiles

SHOWN = 0  # the test image described: the first, not a chosen one
TRIPLES = 6  # pixel values quoted
DRAWN = 16
TITLE = "Pixels or words"
LEAD = ("Describing an image pixel by pixel is useless; words do better, and a latent space is the second kind of "
        "description. Here one test image is described both ways: by its first pixel values, and in words read "
        "off its latent code by the readers fitted on the training codes. Then the words go back the other way: "
        "new images drawn from that description alone.")


def pixel_words(image: np.ndarray, n: int = TRIPLES) -> str:
    """uint8 (C, H, W) -> "an image 32 wide and 32 high; its pixel data is (128, 214, 25), ..."."""
    c, h, w = image.shape
    flat = image.reshape(c, -1).T[:n]
    values = ", ".join(f"({', '.join(str(int(v)) for v in px)})" if c > 1 else str(int(px[0])) for px in flat)
    return f"an image {w} wide and {h} high; its pixel data is {values}, … ({h * w * c:,} numbers in all)"


def _truth(vocab: Vocabulary, row: np.ndarray, j: int) -> str:
    a, v = vocab.attributes[j], row[j]
    if not np.isfinite(v):
        return "not known"
    return a.phrase(v) if a.discrete else f"{v:.3g}"


def _reader_rows(readers: list[AttributeReader], vocab: Vocabulary, truth: np.ndarray,
                 readings: dict[str, str]) -> tuple[tuple[str, ...], ...]:
    rows = []
    for r in readers:
        j = vocab.names.index(r.attribute.name)
        measure = "accuracy" if r.attribute.discrete else "R²"
        rows.append((r.attribute.name, readings.get(r.attribute.name, "left out"), _truth(vocab, truth, j),
                     r.kind, f"{measure} {r.score:.3f}", f"{r.chance:.3f}", "yes" if r.told else "no"))
    return tuple(rows)


def words(src: Sources) -> Section:
    image = src.test.images[SHOWN]
    pixels = pixel_words(image)
    run, model = api.open_model(src.run_dir, src.device)
    vocab = Vocabulary.of(src.train)
    if not vocab.attributes:
        return Section("words", TITLE, LEAD, (png(f"test[{SHOWN}]", f"In pixels: {pixels}.", tiles(image[None])),),
                       notes=("no labels or factors: the run has no words to describe images with",))
    readers = api.fitted_readers(run, model, src.progress)
    _, z = api.cached_codes(run, model, "test", src.progress)
    found = api.describe_codes(readers, z[SHOWN:SHOWN + 1], [f"test[{SHOWN}]"])[0]
    said = {r.attribute: r.words() for r in found.readings}
    table = Table(f"test[{SHOWN}] in words, beside the truth. Each attribute has a reader fitted on the training "
                  "codes (logistic or 15-NN, whichever scores better on held-out training codes); its score is on "
                  "the test codes, and it speaks only when it beats chance (the commonest value; R² 0) by two "
                  "standard errors", ("attribute", "read off the code", "truth", "reader", "test score", "chance",
                                     "above chance"),
                  _reader_rows(readers, vocab, vocab.targets(src.test)[SHOWN], said))
    discrete = {a.name for a in vocab.attributes if a.discrete}
    description = ", ".join(r.text for r in found.readings if r.attribute in discrete)  # words, not measurements
    notes = (f"left out, since the codes cannot tell them above chance: {', '.join(found.left_out)}",) \
        if found.left_out else ()
    if not description:
        return Section("words", TITLE, LEAD, (png(f"test[{SHOWN}]", f"In pixels: {pixels}.", tiles(image[None])),),
                       (table,), (*notes, "no discrete attribute is read above chance, so nothing is drawn"))
    # as long as the evaluation's diffusion prior trains (the demo's budget is shorter than `draw`'s default)
    config = replace(drawing.conditional_config(model.config.latent_dim), train_steps=src.evaluation.options.diffusion_steps)
    drawn = api.draw_codes(run, model, description, n=DRAWN, seed=0, progress=src.progress, config=config,
                           train=src.train)
    figures = (
        png(f"test[{SHOWN}], described twice", f"In pixels: {pixels}. In words: {found.words()}.",
            tiles(image[None])),
        png(f"{DRAWN} images drawn from those words", f"Drawn by the conditional latent-diffusion prior ({config.train_steps:,} "
            f"training steps, guidance {drawn.guidance:g}) from \"{description}\": {len(drawn.terms)} terms, the words of the description (its "
            "measurements and every attribute left out are drawn from the training data). They share the words, "
            "not the pixels.", tiles(drawn.images, ncols=8)),
    )
    return Section("words", TITLE, LEAD, figures, (table,), notes)
