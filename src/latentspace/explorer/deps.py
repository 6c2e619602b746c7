"""What the routers share: the loaded Explorer as a dependency, and the checks and answers several use."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import numpy as np
from fastapi import Depends, HTTPException, Request

from latentspace.api.locate import judge
from latentspace.api.points import NEIGHBOURS, nearest_train
from latentspace.explorer.batching import Batcher
from latentspace.explorer.schemas import (
    Decoded,
    ImageRef,
    Located,
    Neighbour,
    Verdict,
    data_url,
    image_url,
)
from latentspace.explorer.state import Explorer
from latentspace.latent.codes import decode_latents
from latentspace.metrics.ood import ALL_SCORES


async def get_explorer(request: Request) -> Explorer:
    """The app's Explorer (async: a plain attribute read needs no worker thread)."""
    return request.app.state.explorer


ExplorerDep = Annotated[Explorer, Depends(get_explorer)]


def bad_input(field: str, message: str) -> HTTPException:
    """A 422 in the same one-line form as the validation errors: 'field: message'."""
    return HTTPException(status_code=422, detail=f"{field}: {message}")


def latent(ex: Explorer, z: list[float], field: str = "z") -> np.ndarray:
    """A validated list of finite floats as the model's code (D,) float32; 422 when its length is wrong."""
    if len(z) != ex.latent_dim:
        raise bad_input(field, f"latent has {len(z)} values, the model expects {ex.latent_dim}")
    return np.asarray(z, np.float32)


def real_image(ex: Explorer, ref: ImageRef, field: str) -> tuple[np.ndarray, np.ndarray]:
    """The pixels uint8 (C, H, W) and code (D,) of a real image; 422 when the index is out of range.
    field: where the reference sits in the request ('' at the top of the body)."""
    where = f"{field}.index" if field else "index"
    if ref.split == "upload":
        upload = ex.uploads.get(ref.index)
        if upload is None:
            raise bad_input(where, ex.uploads.describe_missing(ref.index))
        return upload.pixels, upload.z
    images = ex.split(ref.split)
    if ref.index >= len(images):
        raise bad_input(where, f"{ref.split} index {ref.index} is outside 0..{len(images) - 1}")
    return images.images[ref.index], ex.codes(ref.split)[ref.index]


def decoded_batch(ex: Explorer, requests: Sequence[tuple[np.ndarray, int]]) -> list[bytes]:
    """Codes (D,) with how many neighbours each wants -> each one's answer, a ``Decoded`` as JSON bytes: the
    images in one model call, the neighbours in one search, the JSON made here in the worker thread too (the
    work of a Batcher; the event loop is left to HTTP)."""
    z = np.stack([code for code, _ in requests]).astype(np.float32)
    images = decode_latents(ex.model, z)
    k = max(k for _, k in requests)
    near = nearest_train(z, ex.z_train, k) if k else None
    return [Decoded(z=[float(v) for v in code], image=data_url(image, fast=True),
                    neighbours=[] if near is None else neighbour_list(ex, near.index[i, :wanted], near.distance[i, :wanted])
                    ).model_dump_json().encode()
            for i, ((code, wanted), image) in enumerate(zip(requests, images))]


async def decoder(request: Request) -> Batcher[bytes]:
    """The app's batching decoder (see explorer.batching)."""
    return request.app.state.decoder


DecoderDep = Annotated[Batcher[bytes], Depends(decoder)]


def neighbours(ex: Explorer, z: np.ndarray, k: int) -> list[Neighbour]:
    """The k training images nearest to code z (D,)."""
    near = nearest_train(z, ex.z_train, k)
    return neighbour_list(ex, near.index[0], near.distance[0])


def neighbour_list(ex: Explorer, index: np.ndarray, distance: np.ndarray) -> list[Neighbour]:
    label = ex.train_labels.get("label")
    return [Neighbour(index=int(i), distance=float(d), url=image_url("train", int(i)),
                      label=None if label is None else label.names[int(label.values[i])])
            for i, d in zip(index, distance)]


UNCALIBRATED = ("no verdict yet: the run's test split is not calibrated; run `latentspace locate RUN test:0` or "
                "`latentspace evaluate RUN` once (it scores every test image, a minute or more)")


def located(ex: Explorer, ref: ImageRef, pixels: np.ndarray, z: np.ndarray) -> Located:
    """A real image, uint8 (C, H, W) with its code (D,) -> its place on every map, its reconstruction, its
    nearest training images and `locate`'s verdict (api.locate.judge, the CLI's own)."""
    positions = {name: tuple(float(v) for v in m.to_map(z[None])[0]) for name, m in ex.maps.items()}
    return Located(ref=ref, url=image_url(ref.split, ref.index), z=[float(v) for v in z], positions=positions,
                   reconstruction=data_url(decode_latents(ex.model, z[None])[0]),
                   neighbours=neighbours(ex, z, NEIGHBOURS), **verdict(ex, pixels))


def verdict(ex: Explorer, pixels: np.ndarray) -> dict:
    """The ``verdict`` and ``verdict_note`` fields of a Located for uint8 pixels (C, H, W)."""
    stored = ex.calibration()
    if stored is None:
        return {"verdict": None, "verdict_note": UNCALIBRATED}
    options, calibrated = stored
    _, readings = judge(ex.run, ex.model, pixels[None], options, calibrated)
    r = readings[0][ALL_SCORES.index(options.score)]
    return {"verdict": Verdict(on_manifold=not r.off, verdict="off the manifold" if r.off else "on the manifold",
                               score=r.name, value=r.value, threshold=r.threshold, percentile=r.percentile,
                               calibration_percentile=options.percentile)}
