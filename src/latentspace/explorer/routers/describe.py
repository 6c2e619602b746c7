"""The description panel: an image in the run's words (read off its code), and images drawn from words."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from latentspace.api.describing import Description, describe_codes
from latentspace.api.drawing import DRAW_METHODS, draw_codes
from latentspace.explorer.deps import ExplorerDep, bad_input, real_image
from latentspace.explorer.schemas import ImageRef, Strict, data_url
from latentspace.latent.conditional import DEFAULT_GUIDANCE

router = APIRouter(prefix="/api", tags=["describe"])

MAX_DESCRIPTION = 500  # characters; a description is a handful of terms
MAX_PANEL_DRAW = 16  # images per request: the panel shows 8
DrawMethod = Literal[tuple(DRAW_METHODS)]  # type: ignore[valid-type]


class AttributeWords(BaseModel):
    """One attribute of the vocabulary: its values (empty for a continuous one) and, for a continuous one,
    the range of its training values."""

    name: str
    values: list[str]
    low: float | None = None
    high: float | None = None


class VocabularyOut(BaseModel):
    """The words a description may use: every known term, and the attributes they come from."""

    terms: list[str]
    attributes: list[AttributeWords]
    note: str


class ReadingOut(BaseModel):
    """One attribute read off a code: a discrete value with its ``probability``, or a continuous ``value``
    with its interval ``low`` .. ``high``."""

    attribute: str
    text: str
    value: float
    probability: float | None = None
    low: float | None = None
    high: float | None = None


class DescriptionOut(BaseModel):
    """An image in words: ``text`` joins the ``readings``; ``left_out`` names the attributes its code cannot
    tell above chance."""

    source: str
    text: str
    readings: list[ReadingOut]
    left_out: list[str]


class DrawIn(Strict):
    """A comma-separated description (`latentspace describe RUN --terms` lists the terms), how many images,
    the classifier-free guidance, the method ('prior': the conditional latent-diffusion prior; 'directions':
    prior samples pushed along the attribute directions) and the seed."""

    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    n: int = Field(8, ge=1, le=MAX_PANEL_DRAW)
    guidance: float = Field(DEFAULT_GUIDANCE, ge=0, le=20, allow_inf_nan=False)
    method: DrawMethod = "prior"  # type: ignore[valid-type]
    seed: int = Field(0, ge=0, le=2**31)


class DrawnImage(BaseModel):
    z: list[float]
    image: str
    positions: dict[str, tuple[float, float]]


class DrawOut(BaseModel):
    """The drawn images with their codes and positions on every map, and the terms as the parser read them."""

    description: str
    terms: list[str]
    method: str
    guidance: float
    images: list[DrawnImage]


@router.get("/vocabulary", response_model=VocabularyOut)
def vocabulary(ex: ExplorerDep) -> VocabularyOut:
    """The run's vocabulary: its labels, attributes.csv columns or generated factors."""
    vocab = ex.vocabulary
    note = ("terms from the run's labels and factors" if vocab.attributes else
            "this run's data has no labels or factors, so there is nothing to describe or draw with")
    return VocabularyOut(terms=vocab.known_terms(), attributes=[AttributeWords(**a) for a in vocab.to_dict()],
                         note=note)


@router.post("/describe", response_model=DescriptionOut)
def describe(ref: ImageRef, ex: ExplorerDep) -> DescriptionOut:
    """A real image (train, test or an upload) described by the readers fitted on the run's codes (the first
    request fits them, seconds, and keeps them in the run's readers.json)."""
    if not ex.vocabulary.attributes:
        raise bad_input("split", "this run's data has no labels or factors to describe images with")
    _, z = real_image(ex, ref, "")
    found: Description = describe_codes(ex.readers(), z[None], [f"{ref.split}[{ref.index}]"])[0]
    return DescriptionOut(**found.to_dict())


@router.post("/draw", response_model=DrawOut)
def draw(body: DrawIn, ex: ExplorerDep) -> DrawOut:
    """Images that fit the description. The first request with method 'prior' trains the run's conditional
    prior (about a minute on 20,000 codes) and stores it beside the weights; later ones take well under a
    second. Terms left out are drawn from their distribution in the training data."""
    if not ex.vocabulary.attributes:
        raise bad_input("description", "this run's data has no labels or factors to draw from")
    try:
        ex.vocabulary.parse(body.description)
    except ValueError as e:
        raise bad_input("description", str(e)) from None
    with ex.draw_lock:
        drawn = draw_codes(ex.run, ex.model, body.description, body.n, body.guidance, body.method, body.seed,
                           train=ex.train)
    names = [t.text for t in drawn.terms]
    images = [DrawnImage(z=[float(v) for v in code], image=data_url(image),
                         positions={name: tuple(float(v) for v in m.to_map(code[None])[0])
                                    for name, m in ex.maps.items()})
              for code, image in zip(drawn.z, drawn.images)]
    return DrawOut(description=body.description, terms=names, method=drawn.method, guidance=drawn.guidance,
                   images=images)
