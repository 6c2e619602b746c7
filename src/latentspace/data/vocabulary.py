"""The words a run's data offers for describing an image, and the parser of descriptions written in them.

A run's vocabulary is its labels (attribute ``label``, one word per class: ``7``, ``sneaker``), its discrete
factors (``attributes.csv`` yes/no columns, the generated faces' ``hair_color``) and its continuous factors
(``smile``). Each discrete value has one canonical phrase, which ``describe`` prints and ``draw`` reads:

    label=7            -> "7"
    mask_on=yes / no   -> "mask on" / "no mask"   (a yes/no attribute: its name, or "no" and its name)
    hair_color=black   -> "black hair"            (value, then the name without its last word)
    smile=0.4          -> "smile=0.4"             (continuous: always name=value)

A description is a comma-separated list of terms. Besides the canonical phrases a term may be ``name=value``
(``hair_color=black``, ``glasses=no``), ``no name`` / ``name`` for a yes/no attribute, a plural (``blue
eyes``), or a bare value that only one attribute has (``blond``). Case, spaces and underscores do not matter.
An unknown term is a one-line ValueError naming the nearest known terms.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

import numpy as np

from latentspace.data.imageset import ImageSet

LABEL = "label"
BINARY = ("no", "yes")
CONTINUOUS_MARGIN = 0.25  # name=value may go this share of the data's range beyond it
NEAREST = 3


def normalise(text: str) -> str:
    """'  Black_Hair ' -> 'black hair'; 'smile = 0.5' -> 'smile=0.5'."""
    text = re.sub(r"[\s_]+", " ", str(text).strip().lower())
    return re.sub(r"\s*=\s*", "=", text)


@dataclass(frozen=True)
class Attribute:
    """One thing a description can say. values: the value names of a discrete attribute, () for a continuous
    one; low / high: the range of a continuous one in the training data."""

    name: str
    values: tuple[str, ...] = ()
    low: float = math.nan
    high: float = math.nan

    @property
    def discrete(self) -> bool:
        return bool(self.values)

    @property
    def binary(self) -> bool:
        return self.values == BINARY and self.name != LABEL

    @property
    def words(self) -> str:
        return normalise(self.name)

    def phrase(self, value: float) -> str:
        """The canonical words for a value (a value index of a discrete attribute)."""
        if not self.discrete:
            return f"{self.words}={value:.3g}"
        v = self.values[int(value)]
        if self.name == LABEL:
            return normalise(v)
        if self.binary:
            return self.words if v == "yes" else "no " + self.words.removesuffix(" on")
        parts = self.words.split(" ")
        return f"{normalise(v)} {' '.join(parts[:-1])}" if len(parts) > 1 else f"{normalise(v)} {parts[0]}"


@dataclass(frozen=True)
class Term:
    """One parsed term: the attribute's position in the vocabulary, its value (a value index, or a number for a
    continuous attribute) and its canonical phrase."""

    attribute: int
    value: float
    text: str


class Vocabulary:
    """The attributes of a run's data, with the phrase table that parses descriptions."""

    def __init__(self, attributes: tuple[Attribute, ...]) -> None:
        self.attributes = tuple(attributes)
        self.names = tuple(a.name for a in self.attributes)
        self._phrases = self._phrase_table()

    @classmethod
    def of(cls, images: ImageSet) -> "Vocabulary":
        """The vocabulary of an image set (its labels and factors)."""
        out = []
        if images.labels is not None:
            n = int(images.labels.max(initial=0)) + 1
            names = images.class_names if len(images.class_names) >= n else tuple(str(i) for i in range(n))
            out.append(Attribute(LABEL, tuple(names)))
        for name in images.factor_names:
            if images.is_discrete(name):
                out.append(Attribute(name, tuple(images.factor_values[name])))
                continue
            column = images.factor(name)
            column = column[np.isfinite(column)]
            if len(column):
                out.append(Attribute(name, (), float(column.min()), float(column.max())))
        return cls(tuple(out))

    def targets(self, images: ImageSet) -> np.ndarray:
        """(N, A) float32: each image's value of each attribute (a value index when discrete; NaN: missing)."""
        columns = [images.labels.astype(np.float32) if a.name == LABEL else images.factor(a.name)
                   for a in self.attributes]
        return np.stack(columns, 1).astype(np.float32) if columns else np.zeros((len(images), 0), np.float32)

    def _phrase_table(self) -> dict[str, tuple[int, float]]:
        table: dict[str, tuple[int, float]] = {}
        bare: dict[str, list[tuple[int, float]]] = {}
        for i, a in enumerate(self.attributes):
            for j, v in enumerate(a.values):
                canonical = a.phrase(j)
                table[canonical] = table[f"{a.words}={normalise(v)}"] = (i, j)
                if not a.binary and a.name != LABEL:
                    table[canonical + "s"] = (i, j)
                    bare.setdefault(normalise(v), []).append((i, j))
            if a.binary:
                table["no " + a.words] = (i, 0)
        for word, meanings in bare.items():
            if len(meanings) == 1:
                table.setdefault(word, meanings[0])
        return table

    def known_terms(self) -> list[str]:
        """Every canonical phrase, and name=... for the continuous attributes."""
        out = [a.phrase(j) for a in self.attributes for j in range(len(a.values))]
        return out + [f"{a.words}=<number in {a.low:.3g}..{a.high:.3g}>" for a in self.attributes if not a.discrete]

    def parse(self, description: str) -> tuple[Term, ...]:
        """Terms of a comma-separated description; a one-line ValueError for an unknown, repeated or
        out-of-range term."""
        terms: list[Term] = []
        for raw in str(description).split(","):
            if not raw.strip():
                continue
            term = self._term(normalise(raw))
            clash = [t.text for t in terms if t.attribute == term.attribute]
            if clash:
                raise ValueError(f"{raw.strip()!r} and {clash[0]!r} both set {self.names[term.attribute]}; "
                                 "give each attribute once")
            terms.append(term)
        return tuple(terms)

    def _term(self, text: str) -> Term:
        if text in self._phrases:
            i, j = self._phrases[text]
            return Term(i, float(j), self.attributes[i].phrase(j))
        name, _, value = text.partition("=")
        for i, a in enumerate(self.attributes):
            if value and not a.discrete and name == a.words:
                return Term(i, self._number(a, value), a.phrase(self._number(a, value)))
        known = [a.phrase(j) for a in self.attributes for j in range(len(a.values))]
        known += [f"{a.words}=" for a in self.attributes if not a.discrete]
        nearest = difflib.get_close_matches(text, known, n=NEAREST, cutoff=0.0)
        raise ValueError(f"unknown term {text!r}; nearest known terms: {', '.join(nearest) or 'none'} "
                         f"(`latentspace describe RUN --terms` lists them all)")

    @staticmethod
    def _number(a: Attribute, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        margin = CONTINUOUS_MARGIN * (a.high - a.low)
        if not (math.isfinite(value) and a.low - margin <= value <= a.high + margin):
            raise ValueError(f"{a.words}={text}: expected a number in {a.low - margin:.3g}..{a.high + margin:.3g} "
                             f"(the data's range {a.low:.3g}..{a.high:.3g}, widened by a quarter)")
        return value

    def to_dict(self) -> list[dict]:
        """JSON-ready (a range is null for a discrete attribute: JSON has no NaN, and NaN != NaN in a key)."""
        return [{"name": a.name, "values": list(a.values), **({} if a.discrete else {"low": a.low, "high": a.high})}
                for a in self.attributes]
