"""The report's data types: a ReportContext of Sections, each with captioned Figures (image bytes) and Tables
of formatted cells. Frozen and free of HTML: the template decides how they look."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from latentspace.api.evaluate import Evaluation
from latentspace.data import ImageSet
from latentspace.utils.progress import Progress


@dataclass(frozen=True)
class Figure:
    """One picture: ``data`` is the file's bytes, ``mime`` image/png or image/gif; width and height in pixels
    as stored (the page may scale it down to fit, never up past them)."""

    title: str
    caption: str
    data: bytes
    mime: str
    width: int
    height: int


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells; ``caption`` says what it measures and how."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    """One step of the story: a lead paragraph, figures, tables, and one-line notes on what is missing."""

    key: str
    title: str
    lead: str
    figures: tuple[Figure, ...] = ()
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportContext:
    """Everything the page shows, in order."""

    title: str
    subtitle: str
    run: str
    version: str
    created: str
    sections: tuple[Section, ...] = field(default=())


@dataclass(frozen=True)
class Sources:
    """What the sections read, loaded once: the run folder, its evaluation and config, both splits, the device;
    ``progress`` for long steps."""

    run_dir: Path
    evaluation: Evaluation
    config: dict
    train: ImageSet
    test: ImageSet
    device: str
    progress: Progress
