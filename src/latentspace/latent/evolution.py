"""How the manifold was learned: the probe codes saved after every epoch, projected to 2-D the same way for
every epoch so that frames of an animation are comparable."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

EPOCH_PREFIX = "epoch_"


@dataclass(frozen=True)
class EvolutionResult:
    """The probe codes after every epoch, projected to 2-D the same way for every epoch.

    epochs: (E,) completed epochs (0 = initial weights). xy: (E, P, 2) float32. projection: 'latent' (the
    codes are at most 2-D) or 'pca' (fitted on the last epoch and applied to all, so frames are comparable).
    labels: (P,) int64 or None naming ``class_names``. test_elbo: (E,) nats, NaN for epoch 0 (not evaluated).
    """

    epochs: tuple[int, ...]
    xy: np.ndarray
    projection: str
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    test_elbo: np.ndarray
    metrics: tuple[dict, ...]


def project_epochs(codes: np.ndarray) -> tuple[np.ndarray, str]:
    """codes (E, P, D) -> (xy (E, P, 2) float32, projection): as they are when D <= 2 (padded), else the PCA
    plane of the last epoch applied to every epoch."""
    codes = np.asarray(codes, np.float32)
    if codes.ndim != 3:
        raise ValueError(f"epoch codes must be (epochs, probes, latent_dim), got shape {codes.shape}")
    if codes.shape[2] <= 2:
        return np.pad(codes, ((0, 0), (0, 0), (0, 2 - codes.shape[2]))), "latent"
    pca = PCA(n_components=2, svd_solver="full").fit(codes[-1])
    xy = pca.transform(codes.reshape(-1, codes.shape[2])).reshape(*codes.shape[:2], 2)
    return xy.astype(np.float32), "pca"


def evolution_from_snapshots(
    snapshots: Mapping[str, np.ndarray], metrics: Sequence[dict], class_names: Sequence[str] = (),
) -> EvolutionResult:
    """The EvolutionResult of a run's snapshots (``epoch_NNNN`` (P, D) arrays, optional ``probe_labels``) and
    its metrics.jsonl records; ValueError when there are no epoch snapshots."""
    keys = sorted(k for k in snapshots if k.startswith(EPOCH_PREFIX))
    if not keys:
        raise ValueError("the run holds no probe snapshots (trained with probe_size 0?); nothing to animate")
    xy, projection = project_epochs(np.stack([snapshots[k] for k in keys]))
    labels = snapshots.get("probe_labels")
    names = tuple(class_names) if labels is not None else ()
    if labels is not None and len(names) <= int(labels.max(initial=0)):
        names = tuple(str(i) for i in range(int(labels.max(initial=0)) + 1))
    elbo_by_epoch = {int(r["epoch"]): float(r["test_elbo"]) for r in metrics if "test_elbo" in r}
    epochs = tuple(int(k.removeprefix(EPOCH_PREFIX)) for k in keys)
    test_elbo = np.array([elbo_by_epoch.get(e, math.nan) for e in epochs])
    return EvolutionResult(epochs, xy, projection, labels, names, test_elbo, tuple(metrics))
