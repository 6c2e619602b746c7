"""Request and response bodies shared by several panels. Validation lives here: a bad value is a 422 whose
one-line message names the field (the app's handler joins pydantic's location and message).

Pictures travel in two ways. Images the model makes (decoded points, edits, interpolation frames,
reconstructions) are data URLs inside the JSON answer (PNG; uncompressed BMP on the decode endpoints, whose
answers follow the pointer), so one request gives the code, the picture and
its neighbours together. Real images (train / test / uploads) are ``image/png`` answers of
``GET /api/images/{split}/{index}.png``, which the browser caches; answers name them by ``url``.
"""
from __future__ import annotations

import base64
import io
from typing import Annotated, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

MAX_ABS_CODE = 1000.0  # prior stds; a larger value is a mistake, and would overflow the decoder's float32
MAX_ABS_POSITION = 1e6  # map units
MAX_LATENT = 1024  # the largest latent a model may have (ModelConfig)

CodeValue = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_ABS_CODE, le=MAX_ABS_CODE)]
Latent = Annotated[list[CodeValue], Field(min_length=1, max_length=MAX_LATENT,
                                          description="A latent code: the model's latent_dim finite numbers.")]
Position = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_ABS_POSITION, le=MAX_ABS_POSITION)]
Split = Literal["train", "test", "upload"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageRef(Strict):
    """A real image, addressed by split and index; uploads are split 'upload', numbered from 0."""

    split: Split
    index: int = Field(ge=0, le=2**31)


class Neighbour(BaseModel):
    """A training image near a code: its index in the train split, the distance between the codes, its label
    (None for unlabelled data) and where to fetch it."""

    index: int
    distance: float
    label: str | None
    url: str


class Decoded(BaseModel):
    """A code, the image it decodes to (an uncompressed BMP data URL: cheapest to make on the pointer's hot
    path) and the real training images nearest to it."""

    z: list[float]
    image: str
    neighbours: list[Neighbour]


class Verdict(BaseModel):
    """`latentspace locate`'s verdict on an image: off the manifold when ``score`` is above ``threshold`` (its
    ``calibration_percentile``-th percentile among the run's test images); ``percentile``: where the image's
    ``value`` falls among theirs."""

    on_manifold: bool
    verdict: str
    score: str
    value: float
    threshold: float
    percentile: float
    calibration_percentile: float


class Located(BaseModel):
    """A real image: where it is (``ref``, ``url``), its code, its position on every map, its reconstruction
    (PNG data URL), the real training images nearest to its code, and whether it is on the manifold
    (``verdict``; None, with ``verdict_note`` saying why, until the run's test split is calibrated)."""

    ref: ImageRef
    url: str
    z: list[float]
    positions: dict[str, tuple[float, float]]
    reconstruction: str
    neighbours: list[Neighbour]
    verdict: Verdict | None = None
    verdict_note: str = ""


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (C, H, W) -> PNG bytes (fast compression: these images are a few kB)."""
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def data_url(image: np.ndarray, fast: bool = False) -> str:
    """uint8 (C, H, W) -> 'data:image/png;base64,...', or with ``fast`` an uncompressed BMP
    ('data:image/bmp;base64,...'): several times cheaper to make, for answers on the pointer's hot path."""
    if not fast:
        return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="BMP")
    return "data:image/bmp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_url(split: str, index: int) -> str:
    return f"/api/images/{split}/{index}.png"


def floats(values: np.ndarray) -> list[float | None]:
    """An array as JSON numbers; NaN (not computed) becomes null, since JSON has no NaN."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, np.float64).ravel()]
