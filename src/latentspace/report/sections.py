"""The report's sections, one function each, in the order of the story (../shared/STORY.md). Each reads the
run through the api functions (caches included), draws with viz, and writes captions that quote its numbers.
Generation, the evaluation and the run itself are in report.measured; pixels or words in report.words."""
from __future__ import annotations

import numpy as np
from PIL import Image

from latentspace import api
from latentspace.latent.directions import binary_targets
from latentspace.latent.space import count_space, enumerate_space
from latentspace.metrics.realness import RealnessTable, classifier_confidence
from latentspace.report.parts import Figure, Section, Sources, Table
from latentspace.viz.animate import evolution_frames, gif_bytes, interpolation_frames
from latentspace.viz.figures import axis_labels, interpolation_figure, space_figure, tile_scale, traversal_figure
from latentspace.viz.grid import image_grid, png_bytes
from latentspace.viz.plots import scatter_codes

MIN_GIF_WIDTH = 320  # narrower animations (three 28 px digits) are shown at twice their size
MIN_TILE_PX = 96  # small images are shown at least this large, enlarged with nearest-neighbour sampling
STORY_SHAPES = (("MNIST digit", (28, 28, 1)), ("the talk's photo", (960, 1280, 3)), ("full-HD colour", (1080, 1920, 3)))


def png(title: str, caption: str, img: Image.Image) -> Figure:
    return Figure(title, caption, png_bytes(img), "image/png", img.width, img.height)


def gif(title: str, caption: str, frames: list[Image.Image]) -> Figure:
    return Figure(title, caption, gif_bytes(frames), "image/gif", frames[0].width, frames[0].height)


def enlarge(img: Image.Image, tile: int, min_tile: int = MIN_TILE_PX) -> Image.Image:
    """``img`` made of ``tile``-pixel parts (or ``tile`` = its width: the whole picture), enlarged by an integer
    factor (nearest neighbour) so each part is at least ``min_tile`` pixels."""
    s = max(1, -(-min_tile // tile))
    return img if s == 1 else img.resize((img.width * s, img.height * s), Image.NEAREST)


def tiles(images: np.ndarray, ncols: int | None = None) -> Image.Image:
    """uint8 (N, C, H, W) as a grid with every tile at least MIN_TILE_PX."""
    return image_grid(images, ncols=ncols, scale=tile_scale(images, MIN_TILE_PX))


# -- 1. pixel space ----------------------------------------------------------------------------------------


def _count_row(name: str, shape: tuple[int, int, int], levels: int) -> tuple[str, ...]:
    c = count_space(shape, levels)
    count = c.exact_str() if c.exact is not None and c.digits <= 12 else f"about {c.scientific()[:8]}e+{c.digits - 1}"
    return (f"{name} ({shape[0]}x{shape[1]}x{shape[2]}, {levels} values)", f"{c.n_axes:,}",
            f"{c.axes_times_values:,}", f"{levels}^{c.n_axes:,} = {count}", f"{c.digits:,}")


def pixel_space(src: Sources) -> Section:
    c_, h, w = src.test.shape
    own = count_space((h, w, c_), 256)
    rows = [_count_row("1x2 binary", (1, 2, 1), 2), _count_row("2x2 binary", (2, 2, 1), 2),
            _count_row("this run's images", (h, w, c_), 256)]
    rows += [_count_row(name, shape, 256) for name, shape in STORY_SHAPES if shape != (h, w, c_)]
    table = Table("Each axis is one pixel channel. The talk multiplies axes by values; the number of images is "
                  "values to the power of axes.",
                  ("image", "axes", "axes x values (the talk's figure)", "number of images", "digits"), tuple(rows))
    figures = (
        png("1x2 pixels, 2 values: 4 images", "Two axes with two values each: 2^2 = 4 images, every one drawn.",
            space_figure(enumerate_space((1, 2, 1), 2))),
        png("2x2 pixels, 2 values: 16 images", "Four axes: 2^4 = 16 images. One more pixel doubles the count.",
            space_figure(enumerate_space((2, 2, 1), 2))),
    )
    lead = (f"An image of {h}x{w}x{c_} has {own.n_axes:,} axes with 256 values each, so there are 256^{own.n_axes:,} "
            f"possible images: a number with {own.digits:,} digits. {own.axes_times_values:,} (axes x values) counts "
            "the (axis, value) pairs, not the images. Real images are a thin manifold inside this space.")
    return Section("space", "Pixel space is enormous", lead, figures, (table,))


# -- 2. the data -------------------------------------------------------------------------------------------


def _factor_rows(images) -> list[tuple[str, ...]]:
    rows = []
    if images.labels is not None:
        counts = np.bincount(images.labels, minlength=len(images.class_names))
        rows.append(("label", ", ".join(f"{n} ({k})" for n, k in zip(images.class_names, counts))))
    for name in images.factor_names:
        col = images.factor(name)
        if images.is_discrete(name):
            counts = np.bincount(col.astype(np.int64), minlength=len(images.factor_values[name]))
            rows.append((name, ", ".join(f"{v} ({k})" for v, k in zip(images.factor_values[name], counts))))
        else:
            rows.append((name, f"continuous, {col.min():.3g} .. {col.max():.3g}"))
    return rows


def data(src: Sources) -> Section:
    test = src.test
    pick = np.sort(np.random.default_rng(0).choice(len(test), size=min(32, len(test)), replace=False))
    fig = png(f"{len(pick)} test images", f"A seeded sample of the {len(test):,} test images of {test.name} "
              f"({len(src.train):,} train); each is {test.shape[1]}x{test.shape[2]} with {test.shape[0]} "
              "channel(s), shown enlarged without smoothing.", tiles(test.images[pick], ncols=8))
    rows = _factor_rows(test)
    notes = () if rows else (f"{test.name} has no labels or factors: sections that need them say so.",)
    tables = (Table("What is known about each test image (value counts)", ("target", "values"), tuple(rows)),) if rows else ()
    lead = (f"The model learns from {len(src.train):,} training images and is judged on {len(test):,} test "
            "images it never saw.")
    return Section("data", "The data", lead, (fig,), tables, notes)


# -- 3. the manifold ---------------------------------------------------------------------------------------


def manifold(src: Sources) -> Section:
    result = api.manifold(src.run_dir, method="pca", k=12, device=src.device, progress=src.progress)
    side = result.grids[0].images.shape[-1]
    run, model = api.open_model(src.run_dir, src.device)
    evaluator = api.run_evaluator(run, model, src.train, src.test, src.progress)

    def judged(images) -> str:
        return "" if evaluator is None else (f"; the evaluator's mean confidence on these tiles is "
                                             f"{classifier_confidence(evaluator, images).mean():.2f}")

    figures = [png(g.title, f"Each of the {len(g.images)} tiles is decoded from a point on an even grid across this "
                   f"plane of latent space: look for smooth change from tile to tile{judged(g.images)}.",
                   enlarge(image_grid(g.images, ncols=result.k, pad=0), side, 48)) for g in result.grids]
    chosen_map = api.best_map(src.run_dir, device=src.device, progress=src.progress)
    c = chosen_map.chosen
    tables = ()
    if chosen_map.labels is not None:
        title = f"test codes by {c.method.upper() if c.method == 'pca' else c.method}, coloured by {c.colour_by}"
        caption = (f"{len(chosen_map.xy):,} test codes mapped to 2-D by {c.method}, coloured by {c.colour_by}: the "
                   f"map that separates a known target best (5-NN accuracy in 2-D {c.separation:.2f}, against "
                   f"{c.chance:.2f} by always guessing the commonest value).")
        tables = (Table("How well each 2-D map separates each target (3-fold 5-NN accuracy; best first)",
                        ("projection", "coloured by", "2-D 5-NN accuracy", "chance", "gain"),
                        tuple((m.method, m.colour_by, f"{m.separation:.3f}", f"{m.chance:.3f}", f"{m.gain:.3f}")
                              for m in chosen_map.candidates)),)
    else:
        title, caption = f"test codes by {c.method}", f"{len(chosen_map.xy):,} test codes mapped to 2-D by {c.method}."
    figures.append(png(title, caption, scatter_codes(chosen_map.xy, chosen_map.labels, chosen_map.class_names,
                                                     title=title)))
    notes: tuple[str, ...] = ()
    try:
        evo = api.evolution(src.run_dir)
        first, last = evo.test_elbo[1] if len(evo.epochs) > 1 else float("nan"), evo.test_elbo[-1]
        figures.append(gif("the manifold being learned", f"The same {evo.xy.shape[1]} test images encoded after every "
                           f"epoch ({evo.projection} of the last epoch's codes); the test ELBO rose from "
                           f"{first:.1f} after epoch 1 to {last:.1f} nats after epoch {evo.epochs[-1]}.",
                           evolution_frames(evo, figsize=(5.0, 4.2))))
    except ValueError as e:
        notes = (f"no learning animation: {e}",)
    lead = ("The model maps every image to a point of a small latent space and back. Decoding a grid of points "
            "shows what lives where; the map of the test codes shows how the data is arranged.")
    return Section("manifold", "The manifold", lead, tuple(figures), tables, notes)


# -- 4. the axes -------------------------------------------------------------------------------------------


def axes(src: Sources) -> Section:
    result = api.traverse(src.run_dir, 0, device=src.device, progress=src.progress)
    labels = axis_labels(result.table, len(result.z0))
    fig = png("one row per latent axis", f"Each row moves one axis of {result.source}'s code from -2.5 to +2.5 "
              "prior standard deviations, the others fixed. The label names the factor the axis carries most "
              "information about (normalised mutual information, against the same estimate on shuffled factors): "
              f"'holds' from {result.table.threshold if result.table else 0.2:g}, 'weak' when clearly above chance.",
              traversal_figure(result.grid, labels, result.values, min_tile=64))
    if result.table is None:
        return Section("axes", "What each axis holds", "Each latent axis is a direction of change.", (fig,),
                       notes=("no labels or factors: which axis holds which factor cannot be measured",))
    t = result.table
    table = Table(f"Normalised mutual information of each axis with each factor (MIG {t.mig:.3f})", t.columns,
                  tuple(t.rows()))
    best = ", ".join(f"{n} in z{a} ({s:.2f})" for n, a, s in zip(t.factor_names, t.best_axis, t.best_score))
    lead = f"In a latent space each axis stands for an attribute, not a pixel. Best axis per factor: {best}."
    return Section("axes", "What each axis holds", lead, (fig,), (table,))


# -- 6. interpolation ----------------------------------------------------------------------------------------


def interpolation(src: Sources) -> Section:
    a, b = api.default_anchors(src.test)[:2]
    result = api.interpolate(src.run_dir, a, b, steps=8, device=src.device, progress=src.progress)
    table = api.interpolation_table(src.run_dir, n_pairs=30, steps=8, device=src.device, progress=src.progress)
    means = {s.path: s for s in table.summaries}
    conf = {p: means[p].classifier_confidence for p in means}
    prec = {p: means[p].manifold_precision for p in means}
    quote = (f"mean evaluator confidence over the middle frames of 30 random pairs: pixel {conf['pixel']:.3f}, "
             f"lerp {conf['lerp']:.3f}, slerp {conf['slerp']:.3f}" if not np.isnan(conf["pixel"]) else
             f"mean ELBO over the middle frames: pixel {means['pixel'].elbo:.1f}, slerp {means['slerp'].elbo:.1f} nats")
    if not np.isnan(prec["pixel"]):
        quote += (f"; share of those frames on the real images' manifold: pixel {prec['pixel']:.2f}, lerp "
                  f"{prec['lerp']:.2f}, slerp {prec['slerp']:.2f}")
    figures = (
        png(f"{result.sources[0]} to {result.sources[1]}", f"Top row: a cross-fade in pixel space, a ghostly double "
            f"exposure. Lower rows: straight (lerp) and spherical (slerp) paths in latent space, decoded; {quote}.",
            interpolation_figure(result.paths, result.scores, min_tile=80)),
        gif("the same paths, played", "Pixel, lerp and slerp frames side by side, t from 0 to 1.",
            [enlarge(f, f.width, MIN_GIF_WIDTH) for f in interpolation_frames(result.paths)]),
    )
    rows = tuple(table.rows())
    tab = Table(f"Realness of the middle frames (t in {table.middle[0]:g}..{table.middle[1]:g}) over "
                f"{table.n_pairs} random test pairs, mean ± standard error over pairs. Manifold precision: the share "
                f"of frames inside the k = {table.manifold_k} nearest-neighbour balls of {table.n_reference} real "
                "test images in the evaluator's features (Kynkaanniemi et al. 2019); high-frequency ratio: the "
                "frames' share of spectral power above half the Nyquist frequency over the real images' "
                f"({table.real_hf_share:.3f})", RealnessTable.HEADER, rows)
    lead = ("A generative model makes more natural images in latent space: between two images, the path through "
            "latent space passes through plausible images, the pixel cross-fade does not.")
    return Section("interpolation", "Interpolation: pixel space against latent space", lead, figures, (tab,))


# -- 7. edits ------------------------------------------------------------------------------------------------


def edits(src: Sources) -> Section:
    ev = src.evaluation
    title, lead = "Attribute edits", ("An attribute is a direction in latent space: moving a code along it "
                                         "adds or removes the attribute, and the evaluator checks that it did.")
    if not ev.edits:
        return Section("edits", title, lead, notes=("no attribute the evaluator can judge: no edits to measure",))
    targets = {t.name: t for t in binary_targets(src.test, src.test)}
    shown = sorted(ev.edits, key=lambda e: -(e.success - e.already))[:3]
    strengths = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
    figures = []
    for e in shown:
        lacking = np.flatnonzero(targets[e.attribute].y_test == 0) if e.attribute in targets else np.arange(1)
        idx = int(lacking[0]) if len(lacking) else 0
        images = api.edit(src.run_dir, idx, e.attribute, strengths, device=src.device, progress=src.progress)
        figures.append(png(f"{e.attribute}, test[{idx}]", f"Moving test[{idx}] along {e.attribute}, from -2 to +3 "
                           f"std: at +{e.strength:g} std the evaluator sees {e.attribute} in {e.success:.0%} of {e.n} "
                           f"test images that lack it ({e.already:.0%} before the edit; mean P {e.p_before:.2f} -> "
                           f"{e.p_after:.2f}).", tiles(images, ncols=len(strengths))))
    rows = tuple((e.attribute, f"{e.n}", f"{e.p_before:.3f}", f"{e.p_after:.3f}", f"{e.already:.3f}",
                  f"{e.success:.3f}") for e in sorted(ev.edits, key=lambda e: -(e.success - e.already)))
    table = Table(f"Every attribute the evaluator can judge: +{ev.options.edit_strength:g} std edits of test images "
                  "lacking it", ("attribute", "images", "mean P before", "mean P after", "P > 0.5 before",
                                 "P > 0.5 after (success)"), rows)
    return Section("edits", title, lead, tuple(figures), (table,))
