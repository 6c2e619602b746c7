"""The map panel: what the run holds, the 2-D maps of the test codes, and the values to colour them by."""
from __future__ import annotations

from typing import Literal

import numpy as np
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from latentspace.api.points import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    NEIGHBOURS,
    SHEPARD_K,
)
from latentspace.explorer.deps import ExplorerDep
from latentspace.explorer.schemas import floats

router = APIRouter(prefix="/api", tags=["map"])

MapMethod = Literal["pca", "latent", "tsne", "umap"]


class ColouringInfo(BaseModel):
    """A label or factor to colour the map by; ``names`` for discrete ones (values index them)."""

    name: str
    kind: Literal["discrete", "continuous"]
    names: list[str]


class Info(BaseModel):
    """The run behind the page and the limits of this API."""

    run: str
    dataset: str
    image_shape: tuple[int, int, int]
    latent_dim: int
    n_train: int
    n_test: int
    maps: list[str]
    default_map: str
    colourings: list[ColouringInfo]
    default_colouring: str | None
    neighbours: int
    max_upload_bytes: int
    max_upload_pixels: int
    has_vocabulary: bool = Field(description="Whether the data has labels or factors to describe and draw with.")


class MapOut(BaseModel):
    """The test codes on the map: point i is test image ``index[i]`` at (``x[i]``, ``y[i]``).

    inverse: how a map position becomes a code (the decode endpoint's rule for this map)."""

    method: str
    index: list[int]
    x: list[float]
    y: list[float]
    inverse: str


class ColouringOut(ColouringInfo):
    """One value per test image (``values[i]`` is test image i)."""

    values: list[float]


@router.get("/info", response_model=Info)
def info(ex: ExplorerDep) -> Info:
    """The run: data, shapes, the maps computed for it and what the map can be coloured by."""
    default = "label" if "label" in ex.colourings else next(
        (c.name for c in ex.colourings.values() if c.kind == "discrete"), next(iter(ex.colourings), None))
    return Info(
        run=ex.name, dataset=ex.test.name, image_shape=ex.image_shape, latent_dim=ex.latent_dim,
        n_train=len(ex.train), n_test=len(ex.test), maps=list(ex.maps), default_map=ex.default_map,
        colourings=[ColouringInfo(name=c.name, kind=c.kind, names=list(c.names)) for c in ex.colourings.values()],
        default_colouring=default, neighbours=NEIGHBOURS, max_upload_bytes=MAX_UPLOAD_BYTES,
        max_upload_pixels=MAX_UPLOAD_PIXELS, has_vocabulary=bool(ex.vocabulary.attributes),
    )


INVERSES = {
    "pca": "the PCA plane through the mean of the test codes: z = mean + x c1 + y c2",
    "latent": "the latent itself: the map is the 2-D code",
    "tsne": f"modified Shepard interpolation of the codes of the {SHEPARD_K} nearest map points",
    "umap": f"modified Shepard interpolation of the codes of the {SHEPARD_K} nearest map points",
}


@router.get("/maps/{method}", response_model=MapOut)
def get_map(method: MapMethod, ex: ExplorerDep) -> MapOut:
    """The 2-D map of the test codes by ``method``: PCA always; t-SNE / UMAP when computed for this run."""
    found = ex.maps.get(method)
    if found is None:
        raise HTTPException(404, f"method: no {method} map for this run; it has {', '.join(ex.maps)} (start the "
                                 f"explorer with --map {method} to compute it)")
    return MapOut(method=found.method, index=found.index.tolist(), x=_rounded(found.xy[:, 0]),
                  y=_rounded(found.xy[:, 1]), inverse=INVERSES[found.method])


def _rounded(values: np.ndarray) -> list[float]:
    return np.asarray(values, np.float64).round(5).tolist()  # 5 decimals: a third of the JSON, nothing visible lost


@router.get("/colourings/{name}", response_model=ColouringOut)
def colouring(name: str, ex: ExplorerDep) -> ColouringOut:
    """The label or factor ``name`` of every test image."""
    found = ex.colourings.get(name)
    if found is None:
        raise HTTPException(404, f"name: no label or factor {name[:60]!r}; there are {', '.join(ex.colourings) or 'none'}")
    return ColouringOut(name=found.name, kind=found.kind, names=list(found.names), values=floats(found.values))

