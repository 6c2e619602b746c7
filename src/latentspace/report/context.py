"""The report's data: one frozen ReportContext of sections, each with captioned figures (PNG/GIF bytes) and
tables of formatted numbers, gathered from a run folder through the api functions and pictured by viz.

Nothing here builds HTML; report.render turns a context into one page with a Jinja2 template. Every caption
says what to look at and quotes the number measured for it. Sections follow ../shared/STORY.md and are numbered
here, in order: pixel space, the data, pixels or words, the manifold, the axes, generation, interpolation,
edits, the evaluation, the run itself.
"""
from __future__ import annotations

import time
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path

from latentspace import api
from latentspace.api.evaluate import EvaluateOptions
from latentspace.report import measured, sections, words
from latentspace.report.parts import ReportContext, Section, Sources
from latentspace.train.zoo import resolve_run, zoo_name_of
from latentspace.utils.files import read_json
from latentspace.utils.progress import NULL_PROGRESS, Progress
from latentspace.utils.version import __version__


SECTION_BUILDERS: tuple[Callable[[Sources], Section], ...] = (
    sections.pixel_space, sections.data, words.words, sections.manifold, sections.axes, measured.generation,
    sections.interpolation, sections.edits, measured.evaluation, measured.run_itself,
)


def build_context(
    run_dir: str | Path, options: EvaluateOptions | None = None, device: str = "cpu",
    progress: Progress = NULL_PROGRESS, on_section: Callable[[str], None] | None = None,
) -> ReportContext:
    """Gather the whole report of a run. The evaluation comes from ``<run>/evaluation.json`` when it holds
    these options (None: any options) for the current weights, else it is measured (and cached) first, with
    the default options when none are given. on_section(title) is called before each section, for a terminal
    to say where it is."""
    run_dir = resolve_run(run_dir)
    evaluation = api.cached_evaluation(run_dir, None) if options is None else None
    if evaluation is None:
        evaluation = api.evaluate(run_dir, options or EvaluateOptions(), device=device, progress=progress)
    train, _ = api.split_codes(run_dir, "train", device, progress)
    test, _ = api.split_codes(run_dir, "test", device, progress)
    config = read_json(run_dir / "config.json")
    src = Sources(run_dir, evaluation, config, train, test, str(device), progress)
    built = []
    for builder in SECTION_BUILDERS:
        if on_section is not None:
            on_section(builder.__name__.replace("_", " "))
        section = builder(src)
        built.append(replace(section, title=f"{len(built) + 1}. {section.title}"))
    data = src.config.get("data") or {}
    zoo_name = zoo_name_of(run_dir)
    origin = (f"pretrained: zoo:{zoo_name}, shipped in the package, so nothing was trained for this page"
              if zoo_name else "trained by you: the run folder below")
    subtitle = (f"a {evaluation.objective} with a {evaluation.latent_dim}-d latent space, trained on "
                f"{data.get('name') or evaluation.dataset} ({origin})")
    return ReportContext(title="What is latent space?", subtitle=subtitle, run=str(run_dir), version=__version__,
                         created=time.strftime("%Y-%m-%d %H:%M"), sections=tuple(built))
