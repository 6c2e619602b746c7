"""Pictures of the learned manifold: decoded latent grids, a 2-D map of the codes, and how it was learned."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentspace.api.common import Device, cached_codes, colouring, model_key, open_model, read_keyed
from latentspace.data import ImageSet
from latentspace.latent.codes import decode_latents
from latentspace.latent.evolution import EvolutionResult, evolution_from_snapshots
from latentspace.latent.manifold import (
    PROJECTIONS,
    pca_plane_grid,
    plane_basis,
    plane_grid,
    prior_quantile_grid,
    project_2d,
)
from latentspace.train.run import open_run
from latentspace.utils.files import save_safetensors
from latentspace.utils.progress import NULL_PROGRESS, Progress

MAX_EMBED_POINTS = 5000  # t-SNE / UMAP cost grows fast with N: a seeded subsample of the test split this large
MAPS_FILE, MAPS_FORMAT = "maps_test.safetensors", "latentspace.maps/1"


@dataclass(frozen=True)
class ManifoldGrid:
    """A decoded k x k grid of latent points: ``images`` uint8 (k*k, C, H, W) row-major, ``latents`` (k*k, D).

    name: file-friendly ('grid', 'plane', 'pca_plane'); title: what the grid spans."""

    name: str
    title: str
    images: np.ndarray
    latents: np.ndarray


@dataclass(frozen=True)
class ManifoldResult:
    """Pictures of the learned manifold and a 2-D map of the encoded test split.

    grids: for a 2-D latent one grid over the prior's quantiles; otherwise the plane through the three
    ``anchors`` (test indices) and the plane of the codes' first two principal components.
    xy: (N, 2) float32 map of the test codes at ``index`` (N,) by ``method`` ('latent' when the codes are
    already 2-D); labels (N,) int64 or None name ``class_names``; ``label_name`` says what they are
    ('label', or a discrete factor for unlabelled data).
    """

    latent_dim: int
    k: int
    grids: tuple[ManifoldGrid, ...]
    xy: np.ndarray
    index: np.ndarray
    method: str
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    label_name: str
    anchors: tuple[int, ...]

def default_anchors(images: ImageSet) -> tuple[int, int, int]:
    """The first three test images of different labels when labelled (and there are 3 classes), else 0, 1, 2."""
    if len(images) < 3:
        raise ValueError(f"the plane through three images needs 3 test images, {images.name} has {len(images)}")
    if images.labels is not None:
        _, first = np.unique(images.labels, return_index=True)
        if len(first) >= 3:
            a, b, c = (int(i) for i in np.sort(first)[:3])
            return a, b, c
    return 0, 1, 2


def spanning(z: np.ndarray, preferred: tuple[int, int, int], tries: int = 64) -> tuple[int, int, int]:
    """``preferred`` if its codes span a plane, else the first triple (keeping as much of it as possible) that
    does: a discrete model (VQ-VAE) can give several images one code."""
    a, b, c = preferred
    candidates = [(a, b, c), *((a, b, j) for j in range(min(tries, len(z)))),
                  *((a, i, j) for i in range(min(tries, len(z))) for j in range(i + 1, min(tries, len(z))))]
    for triple in candidates:
        if len(set(triple)) == 3:
            try:
                plane_basis(*z[list(triple)])
            except ValueError:
                continue
            return tuple(int(i) for i in triple)
    return preferred  # none spans a plane: plane_grid says so in one line


def manifold(
    run_dir: str | Path, method: str = "pca", k: int = 20, anchors: Sequence[int] | None = None,
    device: Device = "cpu", seed: int = 0, progress: Progress = NULL_PROGRESS,
) -> ManifoldResult:
    """The decoded latent manifold (k x k grids) and a 2-D map of the encoded test split.

    method: 'pca', 'tsne' or 'umap' for codes of more than 2 values; t-SNE and UMAP see a seeded subsample
    of at most MAX_EMBED_POINTS codes (their cost grows quickly with N), PCA sees every code.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"method must be one of {', '.join(PROJECTIONS)}, got {method!r}")
    run, model = open_model(run_dir, device)
    d = int(model.config.latent_dim)
    if d < 2:
        raise ValueError(f"manifold needs a latent of at least 2 values, the run's model has {d}")
    test, z = cached_codes(run, model, "test", progress)
    labels, class_names, label_name = colouring(test)
    if d == 2:
        points = prior_quantile_grid(k)
        grids = (ManifoldGrid("grid", "decoded prior quantiles 5%..95%", decode_latents(model, points), points),)
        index, xy, used, chosen = np.arange(len(z)), z.astype(np.float32), "latent", ()
    else:
        chosen = tuple(int(i) for i in anchors) if anchors is not None else spanning(z, default_anchors(test))
        if len(chosen) != 3 or min(chosen) < 0 or max(chosen) >= len(z):
            raise ValueError(f"anchors must be 3 test indices in 0..{len(z) - 1}, got {list(chosen)}")
        plane = plane_grid(*z[list(chosen)], k=k)
        pca = pca_plane_grid(z, k=k)
        grids = (ManifoldGrid("plane", f"plane through test {', '.join(map(str, chosen))}",
                              decode_latents(model, plane), plane),
                 ManifoldGrid("pca_plane", "plane of the first two principal components",
                              decode_latents(model, pca), pca))
        index = _embed_index(len(z), method, seed)
        xy, used = project_2d(z[index], method, seed), method
    return ManifoldResult(d, k, grids, xy, index, used, None if labels is None else labels[index], class_names,
                          label_name, chosen)


def _embed_index(n: int, method: str, seed: int) -> np.ndarray:
    """Which codes a projection sees: all for PCA, a seeded sorted subsample of MAX_EMBED_POINTS otherwise."""
    if method == "pca" or n <= MAX_EMBED_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=MAX_EMBED_POINTS, replace=False))


def evolution(run_dir: str | Path) -> EvolutionResult:
    """How the probe codes (snapshots.safetensors) moved during training, epoch by epoch."""
    run = open_run(run_dir)
    snapshots = run.snapshots()
    class_names = run.dataset("test").class_names if "probe_labels" in snapshots else ()
    try:
        return evolution_from_snapshots(snapshots, run.metrics(), class_names)
    except ValueError as e:
        raise ValueError(f"{run.path}: {e}") from None


@dataclass(frozen=True)
class MapChoice:
    """One candidate map: a projection coloured by one target, and how well the 2-D map separates it:
    ``separation`` is the 5-nearest-neighbour accuracy in 2-D (3-fold cross-validated), ``chance`` the
    majority class's share."""

    method: str
    colour_by: str
    separation: float
    chance: float

    @property
    def gain(self) -> float:
        """(separation - chance) / (1 - chance): 0 for a map that tells nothing, 1 for a perfect one."""
        return (self.separation - self.chance) / max(1e-12, 1.0 - self.chance)


@dataclass(frozen=True)
class CodeMap:
    """The 2-D map of the test codes that separates a known target best. xy (N, 2) of the codes at ``index``;
    labels (N,) int64 of ``colour_by`` naming ``class_names`` (None for unlabelled data); ``chosen`` and every
    ``candidate`` tried, best first."""

    xy: np.ndarray
    index: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    chosen: MapChoice
    candidates: tuple[MapChoice, ...]


def _targets(images: ImageSet) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
    out = {}
    if images.labels is not None:
        labels, names, _ = colouring(images)
        out["label"] = (labels, names)
    for name in images.factor_names:
        if images.is_discrete(name) and len(np.unique(images.factor(name))) > 1:
            out[name] = (images.factor(name).astype(np.int64), images.factor_values[name])
    return out


def _separation(xy: np.ndarray, y: np.ndarray, seed: int) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = StratifiedKFold(3, shuffle=True, random_state=seed) if np.bincount(y).max() >= 3 else 3
    return float(cross_val_score(KNeighborsClassifier(5), xy, y, cv=folds).mean())


def _projections(run, z: np.ndarray, index: np.ndarray, methods: tuple[str, ...], seed: int) -> dict[str, np.ndarray]:
    """The 2-D maps of the codes ``z[index]`` by each method, cached in ``<run>/maps_test.safetensors`` per
    weights and arguments (t-SNE of 1,500 codes takes seconds; the report and explorer ask again and again)."""
    if z.shape[1] == 2:
        return {m: z[index].astype(np.float32) for m in methods}
    # the subsample is a function of the number of codes, its size and the seed: the key needs no more
    key = {"format": MAPS_FORMAT, "methods": ",".join(methods), "seed": str(seed), "n_codes": str(len(z)),
           "n": str(len(index)), **model_key(run)}
    path = run.path / MAPS_FILE
    cached = read_keyed(path, key, methods, "maps cache")
    if cached is not None:
        return dict(zip(methods, cached))
    maps = {m: project_2d(z[index], m, seed).astype(np.float32) for m in methods}
    save_safetensors(path, maps, key, framework="numpy")
    return maps


def best_map(
    run_dir: str | Path, methods: Sequence[str] = ("pca", "tsne"), n: int = 1500, device: Device = "cpu",
    seed: int = 0, progress: Progress = NULL_PROGRESS,
) -> CodeMap:
    """Project a seeded subsample of ``n`` test codes with each of ``methods`` and colour it by each label /
    discrete factor; keep the pair whose 2-D map separates its target best (largest ``MapChoice.gain``)."""
    unknown = [m for m in methods if m not in PROJECTIONS]
    if unknown or not methods:
        raise ValueError(f"methods must be among {', '.join(PROJECTIONS)}, got {list(methods)}")
    run, model = open_model(run_dir, device)
    test, z = cached_codes(run, model, "test", progress)
    index = np.arange(len(z)) if len(z) <= n else np.sort(np.random.default_rng(seed).choice(len(z), n, replace=False))
    maps = _projections(run, z, index, tuple(methods), seed)
    targets = {k: (y[index], names) for k, (y, names) in _targets(test).items()}
    choices = sorted((MapChoice(m, t, _separation(xy, y, seed), float(np.bincount(y).max() / len(y)))
                      for m, xy in maps.items() for t, (y, _) in targets.items()), key=lambda c: -c.gain)
    if not choices:
        first = methods[0]
        return CodeMap(maps[first], index, None, (), MapChoice(first, "", float("nan"), float("nan")), ())
    best = choices[0]
    labels, names = targets[best.colour_by]
    return CodeMap(maps[best.method], index, labels, tuple(names), best, tuple(choices))
