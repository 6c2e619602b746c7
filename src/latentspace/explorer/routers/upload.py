"""The upload panel: an image of your own, scaled and cropped like the CLI's, encoded and reconstructed."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile

from latentspace.api.points import MAX_UPLOAD_BYTES, read_image_bytes
from latentspace.explorer.deps import ExplorerDep, located
from latentspace.explorer.schemas import ImageRef, Located
from latentspace.explorer.state import Upload

router = APIRouter(prefix="/api", tags=["upload"])


@router.post("/upload", response_model=Located,
             responses={413: {"description": "Over 10 MB, or too many pixels."},
                        415: {"description": "Not a PNG, JPEG or WebP image."}})
def upload(file: Annotated[UploadFile, File(description="A PNG, JPEG or WebP image, at most 10 MB.")],
           ex: ExplorerDep) -> Located:
    """Read the image (judged by decoding its bytes, whatever its name), scale the shorter side and crop the
    centre to the model's size, encode it, and answer like ``POST /api/locate``, `latentspace locate`'s verdict
    included once the run is calibrated. It is kept as split 'upload' under the returned index (the last few
    uploads are kept)."""
    pixels = read_image_bytes(file.file.read(MAX_UPLOAD_BYTES + 1), ex.image_shape)
    z = ex.encode(pixels)
    index = ex.uploads.add(Upload(pixels, z))
    return located(ex, ImageRef(split="upload", index=index), pixels, z)
