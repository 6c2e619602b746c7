"""Attribute directions in latent space (InterFaceGAN, Shen et al. 2020): a unit vector v such that moving a
code along v turns an attribute on, found from labelled codes by a mean difference or a linear classifier.

A direction's ``threshold`` splits the projections z . v into negative / positive with the best training
accuracy; ``probe_accuracy`` is that split's accuracy on held-out codes. ``scale`` is the std of the training
projections, the unit of edit strengths: edit_latents(z, d, [2]) moves z two such stds along v.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from latentspace.data.imageset import ImageSet
from latentspace.utils.files import read_json, write_json

log = logging.getLogger(__name__)

METHODS = ("mean", "logistic")


@dataclass(frozen=True)
class AttributeDirection:
    """A fitted attribute direction. vector: (D,) float64, unit norm, pointing towards the attribute.

    method: 'mean', 'logistic' or 'conditional'. threshold: projection above which a code is called positive.
    scale: std of the training codes' projections. conditioned_on: names projected out (conditional only).
    """

    name: str
    method: str
    vector: np.ndarray
    threshold: float
    scale: float
    probe_accuracy: float
    conditioned_on: tuple[str, ...] = field(default=())

    def project(self, z: np.ndarray) -> np.ndarray:
        """z . v for codes (N, D) -> (N,)."""
        return np.asarray(z, dtype=np.float64) @ self.vector

    def predict(self, z: np.ndarray) -> np.ndarray:
        """1 where the projection passes the threshold, else 0: (N, D) -> (N,) int64."""
        return (self.project(z) > self.threshold).astype(np.int64)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "method": self.method, "vector": [float(v) for v in self.vector],
            "threshold": self.threshold, "scale": self.scale, "probe_accuracy": self.probe_accuracy,
            "conditioned_on": list(self.conditioned_on),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "AttributeDirection":
        vector = np.asarray(d["vector"], dtype=np.float64)
        if vector.ndim != 1 or not np.isclose(np.linalg.norm(vector), 1.0, atol=1e-6):
            raise ValueError(f"direction {d.get('name')!r}: vector must be a unit (D,) list, got norm "
                             f"{np.linalg.norm(vector):.4g} shape {vector.shape}")
        return cls(str(d["name"]), str(d["method"]), vector, float(d["threshold"]), float(d["scale"]),
                   float(d["probe_accuracy"]), tuple(d.get("conditioned_on", ())))


def _check_binary(name: str, z: np.ndarray, y: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    z, y = np.asarray(z, dtype=np.float64), np.asarray(y)
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"direction {name!r}: {split} codes must be (N, D) with labels (N,), got {z.shape}, {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"direction {name!r}: {split} labels must be 0/1, got values {np.unique(y)[:5]}")
    counts = np.bincount(y.astype(np.int64), minlength=2)
    if split == "train" and counts.min() == 0:
        raise ValueError(f"direction {name!r}: train labels need both classes, got {counts[0]} negatives, "
                         f"{counts[1]} positives")
    return z, y.astype(np.int64)


def best_threshold(projections: np.ndarray, y: np.ndarray) -> float:
    """The split t of 1-D ``projections`` maximising accuracy of (p > t) == y; midway between neighbours."""
    order = np.argsort(projections, kind="stable")
    p, ys = projections[order], y[order]
    # Splitting after position i: negatives among the first i+1 plus positives among the rest.
    correct = np.cumsum(1 - ys) + (ys.sum() - np.cumsum(ys))
    correct = np.concatenate([[ys.sum()], correct])  # the split below everything
    best = int(np.argmax(correct))
    if best == 0:
        return float(p[0] - 1.0)
    if best == len(p):
        return float(p[-1] + 1.0)
    return float((p[best - 1] + p[best]) / 2)


def _finish(name, method, vector, z_train, y_train, z_test, y_test, conditioned_on=()) -> AttributeDirection:
    if z_test.shape[1] != z_train.shape[1] or vector.shape != (z_train.shape[1],):
        raise ValueError(f"direction {name!r}: train codes have {z_train.shape[1]} values, test codes "
                         f"{z_test.shape[1]}, direction {vector.shape[0]}; they must agree")
    vector = vector / np.linalg.norm(vector)
    proj = z_train @ vector
    threshold = best_threshold(proj, y_train)
    accuracy = float(np.mean(((z_test @ vector) > threshold) == y_test)) if len(y_test) else float("nan")
    return AttributeDirection(name, method, vector, threshold, float(proj.std()), accuracy, tuple(conditioned_on))


def fit_direction(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
    method: str = "mean", name: str = "attribute",
) -> AttributeDirection:
    """Direction of a binary attribute from codes (N, D) and 0/1 labels (N,).

    'mean': positive mean minus negative mean. 'logistic': the normal of a logistic-regression boundary.
    Both normalised to unit length; the probe accuracy is measured on the test codes.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    z_train, y_train = _check_binary(name, z_train, y_train, "train")
    z_test, y_test = _check_binary(name, z_test, y_test, "test")
    if method == "mean":
        vector = z_train[y_train == 1].mean(0) - z_train[y_train == 0].mean(0)
    else:
        vector = LogisticRegression(max_iter=2000).fit(z_train, y_train).coef_[0]
    if not np.linalg.norm(vector) > 0:
        raise ValueError(f"direction {name!r}: the codes do not separate the attribute at all (zero direction)")
    return _finish(name, method, vector, z_train, y_train, z_test, y_test)


def conditional_direction(
    primary: AttributeDirection, others: Sequence[AttributeDirection],
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
) -> AttributeDirection:
    """InterFaceGAN's conditional manipulation: ``primary`` with its components along ``others`` removed.

    An orthonormal basis of the others' span (QR, i.e. Gram-Schmidt) is projected out and the rest
    renormalised, so editing along the result leaves the others' projections unchanged. The labels are
    the primary attribute's, to refit the threshold and probe accuracy.
    """
    if not others:
        raise ValueError(f"conditional_direction({primary.name!r}) needs at least one other direction")
    z_train, y_train = _check_binary(primary.name, z_train, y_train, "train")
    z_test, y_test = _check_binary(primary.name, z_test, y_test, "test")
    basis, _ = np.linalg.qr(np.stack([o.vector for o in others], axis=1))  # (D, K) orthonormal columns
    v = primary.vector - basis @ (basis.T @ primary.vector)
    v = v - basis @ (basis.T @ v)  # a second pass removes what rounding left of the others
    if np.linalg.norm(v) < 1e-8:
        raise ValueError(f"direction {primary.name!r} lies in the span of {[o.name for o in others]}; "
                         "nothing is left after conditioning")
    names = tuple(o.name for o in others)
    return _finish(primary.name, "conditional", v, z_train, y_train, z_test, y_test, names)


@dataclass(frozen=True)
class BinaryTarget:
    """One attribute as 0/1 labels on each split; ``keep_*`` masks codes that take part (terciles drop the middle)."""

    name: str
    y_train: np.ndarray
    keep_train: np.ndarray
    y_test: np.ndarray
    keep_test: np.ndarray


def _every(images: ImageSet) -> np.ndarray:
    return np.ones(len(images), dtype=bool)


def binary_targets(train: ImageSet, test: ImageSet) -> list[BinaryTarget]:
    """Every binary attribute the labels and factors of an image set offer.

    Labels: one-vs-rest per class ('class=<name>'). Discrete factors: 2 values -> one target named for the
    factor (positive = value index 1); more -> one per value ('<factor>=<value>'). Continuous factors: top vs
    bottom tercile of the training values (name = factor name); 0/1 columns count as binary.
    """
    out: list[BinaryTarget] = []
    if train.labels is not None and test.labels is not None:
        for c, cname in enumerate(train.class_names):
            out.append(BinaryTarget(f"class={cname}", (train.labels == c).astype(np.int64), _every(train),
                                    (test.labels == c).astype(np.int64), _every(test)))
    for fname in train.factor_names if test.factors is not None else ():
        a, b = train.factor(fname), test.factor(fname)
        values = train.factor_values.get(fname)
        if values is not None and len(values) > 2:
            for i, vname in enumerate(values):
                out.append(BinaryTarget(f"{fname}={vname}", (a == i).astype(np.int64), _every(train),
                                        (b == i).astype(np.int64), _every(test)))
        elif values is not None or np.isin(a, (0.0, 1.0)).all():
            out.append(BinaryTarget(fname, (a == 1).astype(np.int64), _every(train),
                                    (b == 1).astype(np.int64), _every(test)))
        else:
            lo, hi = np.quantile(a, [1 / 3, 2 / 3])
            out.append(BinaryTarget(fname, (a >= hi).astype(np.int64), (a <= lo) | (a >= hi),
                                    (b >= hi).astype(np.int64), (b <= lo) | (b >= hi)))
    return out


def directions_for(
    z_train: np.ndarray, train: ImageSet, z_test: np.ndarray, test: ImageSet, method: str = "mean",
) -> list[AttributeDirection]:
    """A direction per binary target of ``binary_targets(train, test)``; targets whose training codes hold
    only one class (a constant factor, an absent class) have no direction and are skipped (logged)."""
    if len(z_train) != len(train) or len(z_test) != len(test):
        raise ValueError(f"codes and image sets differ in length: train {len(z_train)} vs {len(train)}, "
                         f"test {len(z_test)} vs {len(test)}")
    z_train, z_test = np.asarray(z_train), np.asarray(z_test)
    out = []
    for t in binary_targets(train, test):
        y = t.y_train[t.keep_train]
        if y.min() == y.max():
            log.info("no direction for %r: every kept training code has label %d", t.name, y[0])
            continue
        out.append(fit_direction(z_train[t.keep_train], y, z_test[t.keep_test], t.y_test[t.keep_test],
                                 method=method, name=t.name))
    return out


def edit_latents(z: np.ndarray, direction: AttributeDirection, strengths: Sequence[float]) -> np.ndarray:
    """z + s * scale * v for each strength s (in stds of the training projections).

    z: (D,) -> (S, D); z: (B, D) -> (B, S, D). float32.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.shape[-1] != direction.vector.shape[0] or z.ndim not in (1, 2):
        raise ValueError(f"codes must be (D,) or (B, D) with D = {direction.vector.shape[0]}, got {z.shape}")
    steps = np.asarray(strengths, dtype=np.float64)[:, None] * direction.scale * direction.vector  # (S, D)
    return (z[..., None, :] + steps).astype(np.float32)


def save_directions(path: str | Path, directions: Sequence[AttributeDirection],
                    model: dict[str, str] | None = None) -> Path:
    """Write directions as JSON {"directions": [...], "model": key} atomically; ``model`` names the weights the
    directions were fitted on, so a later reader can tell they went stale."""
    return write_json(path, {"directions": [d.to_dict() for d in directions], "model": model})


def load_directions(path: str | Path) -> list[AttributeDirection]:
    return read_directions(path)[0]


def read_directions(path: str | Path) -> tuple[list[AttributeDirection], dict[str, str] | None]:
    """The directions of a file and the key of the weights they were fitted on (None when not recorded)."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("directions"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'directions' list")
    try:
        directions = [AttributeDirection.from_dict(d) for d in data["directions"]]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: damaged direction entry ({e})") from None
    model = data.get("model")
    return directions, model if isinstance(model, dict) else None
