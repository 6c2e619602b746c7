"""`train`'s options for the settings only some families read (ModelConfig.FAMILY_FIELDS), each with its help
naming the families that read it, and the check that refuses one the chosen family would ignore."""
from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from latentspace.models import ModelConfig
from latentspace.models.config import FAMILY_FIELDS, FAMILY_FLOATS
from latentspace.models.objectives import families_reading


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _option(kind, field: str):
    users = ", ".join(families_reading(field))
    text = f"{FAMILY_FIELDS[field][0].upper()}{FAMILY_FIELDS[field][1:]} ({users}; default {getattr(ModelConfig, field):g})."
    return Annotated[kind | None, typer.Option(flag(field), help=text)]


KOpt = _option(int, "k")
PseudoInputsOpt = _option(int, "pseudo_inputs")
MmdWeightOpt = _option(float, "mmd_weight")
DipWeightOpt = _option(float, "dip_weight")
CodebookOpt = _option(int, "codebook")
CodeDimOpt = _option(int, "code_dim")
CommitmentOpt = _option(float, "commitment")
LayersOpt = _option(int, "layers")
FreeBitsOpt = _option(float, "free_bits")

OPTIONS = {field: field for field in FAMILY_FIELDS}  # CLI option name -> ModelConfig field: the same here


def check_family_options(given: dict[str, Any]) -> None:
    """Refuse a family setting that is not finite, or that the chosen family (default vae) would ignore."""
    model = given.get("model", "vae")
    for field in FAMILY_FIELDS:
        if field not in given:
            continue
        value = given[field]
        if field in FAMILY_FLOATS and not math.isfinite(value):
            raise ValueError(f"{flag(field)} {value}: expected a finite number")
        users = families_reading(field)
        if model not in users:
            raise ValueError(f"{flag(field)} is read by {', '.join(users)} only; this run's --model is {model}")
