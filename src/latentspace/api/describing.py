"""`describe`: an image in words, read off its latent code in the run's own vocabulary (labels, attributes.csv
columns, generated factors). The readers (latent.readers) are fitted once per model on the encoded train split
and kept in ``<run>/readers.json``, keyed by the weights.

    for d in describe("runs/faces", [0, "photo.png"]):
        print(d.line())    # test[0]: black hair (0.97), long hair (0.88), no mask (0.99), smile=0.41 [0.1, 0.7]
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentspace.api.common import Device, ImageRef, cached_codes, model_key, open_model, resolve_image
from latentspace.data.vocabulary import Vocabulary
from latentspace.latent.codes import encode_images
from latentspace.latent.readers import AttributeReader, Reading, fit_reader
from latentspace.models import Autoencoder
from latentspace.train.run import Run
from latentspace.utils.files import read_json, write_json
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

READERS_FILE = "readers.json"
READERS_FORMAT = "latentspace.readers/1"


@dataclass(frozen=True)
class Description:
    """What the codes say about one image: ``readings`` for the attributes read above chance, ``left_out``
    the attributes whose reader cannot tell them above chance."""

    source: str
    readings: tuple[Reading, ...]
    left_out: tuple[str, ...]

    def words(self) -> str:
        return ", ".join(r.words() for r in self.readings) or "nothing read above chance"

    def line(self) -> str:
        tail = f"; not read above chance: {', '.join(self.left_out)}" if self.left_out else ""
        return f"{self.source}: {self.words()}{tail}"

    def to_dict(self) -> dict:
        return {"source": self.source, "text": self.words(),
                "readings": [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                              for k, v in r.__dict__.items()} for r in self.readings],
                "left_out": list(self.left_out)}


def run_vocabulary(run: Run) -> Vocabulary:
    """The words the run's training data offers (labels and factors)."""
    return Vocabulary.of(run.dataset("train"))


def fitted_readers(run: Run, model: Autoencoder, progress: Progress = NULL_PROGRESS) -> list[AttributeReader]:
    """One reader per attribute the training codes hold more than one value of: stored in readers.json, or
    fitted now (seconds) and stored."""
    train, z_train = cached_codes(run, model, "train", progress)
    vocab = Vocabulary.of(train)
    y_train = vocab.targets(train)
    path, key = run.path / READERS_FILE, {"format": READERS_FORMAT, **model_key(run)}
    saved = read_json(path) if path.is_file() else None
    if isinstance(saved, dict) and saved.get("key") == key:
        try:
            return [AttributeReader.from_dict(d, vocab.attributes[vocab.names.index(d["attribute"])])
                    .attach(z_train, y_train[:, vocab.names.index(d["attribute"])]) for d in saved["readers"]]
        except (KeyError, TypeError, ValueError) as e:
            log.warning("%s: unreadable (%s); refitting", path, e)
    test, z_test = cached_codes(run, model, "test", progress)
    y_test = vocab.targets(test)
    readers = [r for j, a in enumerate(vocab.attributes)
               if (r := fit_reader(a, z_train, y_train[:, j], z_test, y_test[:, j])) is not None]
    write_json(path, {"key": key, "readers": [r.to_dict() for r in readers]})
    return readers


def describe_codes(readers: Sequence[AttributeReader], z: np.ndarray, sources: Sequence[str]) -> list[Description]:
    """Descriptions of codes (N, D), one per source name."""
    told = [r for r in readers if r.told]
    left_out = tuple(r.attribute.name for r in readers if not r.told)
    columns = [r.read(z) for r in told]
    return [Description(src, tuple(col[i] for col in columns), left_out) for i, src in enumerate(sources)]


def describe(
    run_dir: str | Path, images: Sequence[ImageRef], device: Device = "cpu", progress: Progress = NULL_PROGRESS,
) -> list[Description]:
    """Each image (a test index or an image file) described by the run's readers."""
    run, model = open_model(run_dir, device)
    readers = fitted_readers(run, model, progress)
    if not readers:
        raise ValueError(f"{run.path}: the data has no labels or factors to describe images with")
    test = run.dataset("test") if any(isinstance(i, (int, np.integer)) for i in images) else None
    resolved = [resolve_image(ref, run, test) for ref in images]
    z = encode_images(model, np.stack([pixels for pixels, _ in resolved]))
    return describe_codes(readers, z, [name for _, name in resolved])
