"""The decode panel: the image under the pointer and the real training images nearest to it; real images by
split and index."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import Field

from latentspace.api.points import NEIGHBOURS
from latentspace.explorer.deps import (
    DecoderDep,
    ExplorerDep,
    latent,
    located,
    real_image,
)
from latentspace.explorer.routers.maps import MapMethod
from latentspace.explorer.schemas import (
    Decoded,
    ImageRef,
    Latent,
    Located,
    Position,
    Split,
    Strict,
    png_bytes,
)

router = APIRouter(prefix="/api", tags=["decode"])

Count = Annotated[int, Field(ge=0, le=64, description="How many nearest training images to return.")]


class DecodeIn(Strict):
    z: Latent
    neighbours: Count = NEIGHBOURS


class PointIn(Strict):
    """A position on a map, in the map's own units (those of ``GET /api/maps/{method}``)."""

    x: Position
    y: Position
    neighbours: Count = NEIGHBOURS


@router.post("/decode", response_model=Decoded)
async def decode(body: DecodeIn, ex: ExplorerDep, decoder: DecoderDep) -> Response:
    """Decode a latent code; also return the training images whose codes lie nearest to it."""
    return json_answer(await decoder(latent(ex, body.z), body.neighbours))


@router.post("/maps/{method}/decode", response_model=Decoded)
async def decode_point(method: MapMethod, body: PointIn, ex: ExplorerDep, decoder: DecoderDep) -> Response:
    """Decode the code under a map position (see the map's ``inverse``), anywhere, between points too."""
    found = ex.maps.get(method)
    if found is None:
        raise HTTPException(404, f"method: no {method} map for this run; it has {', '.join(ex.maps)}")
    return json_answer(await decoder(found.to_latent([[body.x, body.y]])[0], body.neighbours))


def json_answer(body: bytes) -> Response:
    """A ``Decoded`` already serialised by the batch (FastAPI passes a Response through as it is)."""
    return Response(body, media_type="application/json")


@router.post("/locate", response_model=Located)
def locate(ref: ImageRef, ex: ExplorerDep) -> Located:
    """A real image's code, map positions, reconstruction, nearest training images and on-manifold verdict."""
    pixels, z = real_image(ex, ref, "")
    return located(ex, ref, pixels, z)


@router.get("/images/{split}/{index}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "The image as PNG."}})
def image(split: Split, index: Annotated[int, Path(ge=0, le=2**31)], ex: ExplorerDep) -> Response:
    """A real image by split ('train', 'test' or 'upload') and index, as PNG (uploads after scaling and cropping)."""
    pixels, _ = real_image(ex, ImageRef(split=split, index=index), "")
    return Response(png_bytes(pixels), media_type="image/png", headers={"Cache-Control": "max-age=3600"})
