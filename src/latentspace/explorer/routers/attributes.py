"""The attributes panel: a slider per attribute direction and per latent axis, applied to the pinned code."""
from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from latentspace.api.points import moved_code
from latentspace.explorer.deps import ExplorerDep, bad_input, latent
from latentspace.explorer.schemas import Latent, Strict, data_url
from latentspace.latent.codes import decode_latents

router = APIRouter(prefix="/api", tags=["attributes"])

MAX_STRENGTH = 10.0
Strength = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_STRENGTH, le=MAX_STRENGTH)]


class Attribute(BaseModel):
    """A direction in latent space that turns an attribute on; ``scale`` is the unit of strengths (the std of
    the training codes' projections on it); ``probe_accuracy`` how well it separates held-out codes."""

    name: str
    method: str
    scale: float
    probe_accuracy: float | None


class AttributesOut(BaseModel):
    attributes: list[Attribute]
    latent_dim: int
    note: str


class EditIn(Strict):
    """The pinned code and the slider values: attribute name -> strength (stds of the training projections),
    and one offset per latent axis (prior stds; empty for none)."""

    z: Latent
    attributes: Annotated[dict[str, Strength], Field(default_factory=dict, max_length=1024)]
    axes: Annotated[list[Strength], Field(default_factory=list, max_length=1024)]


class Edited(BaseModel):
    z: list[float]
    image: str


@router.get("/attributes", response_model=AttributesOut)
def attributes(ex: ExplorerDep) -> AttributesOut:
    """The run's attribute directions, from its directions.json (fitted by the mean difference of the
    encoded train split and saved there on first use when absent)."""
    found = ex.directions()
    note = ("directions from directions.json" if found else
            "this run's data has no labels or factors, so there are no attribute directions; the axis sliders work")
    return AttributesOut(
        attributes=[Attribute(name=d.name, method=d.method, scale=d.scale,
                              probe_accuracy=None if math.isnan(d.probe_accuracy) else d.probe_accuracy)
                    for d in found],
        latent_dim=ex.latent_dim, note=note)


@router.post("/edit", response_model=Edited)
def edit(body: EditIn, ex: ExplorerDep) -> Edited:
    """The pinned code moved along attribute directions and latent axes, decoded."""
    z = latent(ex, body.z)
    if body.axes and len(body.axes) != ex.latent_dim:
        raise bad_input("axes", f"has {len(body.axes)} offsets, the model's latent {ex.latent_dim} (or give none)")
    directions = ex.directions()
    known = {d.name for d in directions}
    unknown = [name for name in body.attributes if name not in known]
    if unknown:
        raise bad_input(f"attributes.{unknown[0][:60]}", f"no such attribute; there are {len(known)}, listed by "
                                                          "GET /api/attributes")
    moved = moved_code(z, directions, body.attributes, body.axes or None)
    return Edited(z=[float(v) for v in moved], image=data_url(decode_latents(ex.model, moved[None])[0]))
