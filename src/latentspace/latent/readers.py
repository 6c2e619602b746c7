"""Attribute readers: what a latent code says about its image, read by the same kinds of probe that
`evaluate` scores (logistic regression on standardised codes, k-nearest neighbours on raw codes).

Per attribute, both probes are fitted on four fifths of the training codes and the one more accurate on the
last fifth is kept (refitted on every training code). Its test accuracy (discrete) or R^2 (continuous) says
whether it reads the attribute at all:
- discrete: told when its test accuracy beats always guessing the majority class by two standard errors;
- continuous (ridge or k-NN regression): told when test R^2 >= 0.1, and read with an interval of +-1.96
  standard deviations of the held-out residuals (95% when they are Gaussian).

The logistic / ridge weights are plain lists in JSON (no pickle); a k-NN reader refits its index on the
training codes it is given when loaded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from latentspace.data.vocabulary import Attribute

K = 15
HELD_OUT = 0.2
MIN_R2 = 0.1
Z95 = 1.96
MAX_FIT = 20_000


@dataclass(frozen=True)
class Reading:
    """One attribute read off one code. probability: of the value read (discrete); low / high: the interval
    around a continuous value."""

    attribute: str
    text: str
    value: float
    probability: float = math.nan
    low: float = math.nan
    high: float = math.nan

    def words(self) -> str:
        if math.isnan(self.low):
            return f"{self.text} ({self.probability:.2f})"
        return f"{self.text} [{self.low:.3g}, {self.high:.3g}]"


class AttributeReader:
    """A fitted probe for one attribute. ``score``: test accuracy (discrete) or R^2; ``chance``: the majority
    class's test accuracy (discrete) or 0; ``told``: whether it reads above chance."""

    def __init__(self, attribute: Attribute, method: str, params: dict, score: float, chance: float,
                 told: bool, spread: float = math.nan) -> None:
        self.attribute, self.method, self.params = attribute, method, params
        self.score, self.chance, self.told, self.spread = score, chance, told, spread
        self._knn = None

    @property
    def kind(self) -> str:
        """The model in words: 'logistic', 'ridge' or 'k-NN'."""
        if self.method == "knn":
            return f"{K}-NN"
        return "logistic" if self.attribute.discrete else "ridge"

    def attach(self, z_train: np.ndarray, y_train: np.ndarray) -> "AttributeReader":
        """Give a k-NN reader its training codes (N, D) and values (N,) (NaN rows are dropped)."""
        if self.method == "knn":
            keep = np.isfinite(y_train)
            self._knn = _knn(self.attribute, z_train[keep], y_train[keep])
        return self

    def predict(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), probabilities (N,)) for codes (N, D); continuous probabilities are NaN."""
        z = np.asarray(z, np.float64)
        if self.attribute.discrete:
            proba = self._proba(z)
            classes = np.asarray(self.params["classes"])
            return classes[proba.argmax(1)].astype(np.float64), proba.max(1)
        if self.method == "knn":
            return self._knn.predict(z), np.full(len(z), math.nan)
        p = self.params
        zs = (z - np.asarray(p["mean"])) / np.asarray(p["scale"])
        return zs @ np.asarray(p["coef"]) + p["intercept"], np.full(len(z), math.nan)

    def _proba(self, z: np.ndarray) -> np.ndarray:
        if self.method == "knn":
            return self._knn.predict_proba(z)
        p = self.params
        logits = ((z - np.asarray(p["mean"])) / np.asarray(p["scale"])) @ np.asarray(p["coef"]).T + p["intercept"]
        if logits.shape[1] == 1:  # sklearn's binary case: one logit for the second class
            logits = np.concatenate([np.zeros_like(logits), logits], 1)
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)

    def read(self, z: np.ndarray) -> list[Reading]:
        values, probs = self.predict(z)
        a = self.attribute
        if a.discrete:
            return [Reading(a.name, a.phrase(v), float(v), float(p)) for v, p in zip(values, probs)]
        half = Z95 * self.spread
        return [Reading(a.name, a.phrase(v), float(v), low=float(v - half), high=float(v + half)) for v in values]

    def to_dict(self) -> dict:
        return {"attribute": self.attribute.name, "method": self.method, "params": self.params,
                "score": self.score, "chance": self.chance, "told": self.told,
                "spread": None if math.isnan(self.spread) else self.spread}

    @classmethod
    def from_dict(cls, d: dict, attribute: Attribute) -> "AttributeReader":
        spread = math.nan if d.get("spread") is None else float(d["spread"])
        return cls(attribute, d["method"], d["params"], float(d["score"]), float(d["chance"]), bool(d["told"]), spread)


def _knn(a: Attribute, z: np.ndarray, y: np.ndarray):
    k = min(K, len(z) - 1)
    if a.discrete:
        return KNeighborsClassifier(n_neighbors=k).fit(z, y.astype(np.int64))
    return KNeighborsRegressor(n_neighbors=k).fit(z, y)


def _linear(a: Attribute, z: np.ndarray, y: np.ndarray) -> dict:
    mean, scale = z.mean(0), z.std(0) + 1e-12
    zs = (z - mean) / scale
    if a.discrete:
        fit = LogisticRegression(max_iter=1000).fit(zs, y.astype(np.int64))
        params = {"coef": fit.coef_.tolist(), "intercept": fit.intercept_.tolist(), "classes": fit.classes_.tolist()}
    else:
        fit = Ridge(alpha=1.0).fit(zs, y)
        params = {"coef": fit.coef_.tolist(), "intercept": float(fit.intercept_)}
    return {"mean": mean.tolist(), "scale": scale.tolist(), **params}


def _candidate(a: Attribute, method: str, z: np.ndarray, y: np.ndarray) -> AttributeReader:
    params = _linear(a, z, y) if method == "logistic" else {"classes": np.unique(y).tolist()}
    reader = AttributeReader(a, method, params, math.nan, math.nan, False)
    return reader.attach(z, y)


def _score(reader: AttributeReader, z: np.ndarray, y: np.ndarray) -> float:
    pred, _ = reader.predict(z)
    if reader.attribute.discrete:
        return float(np.mean(pred == y))
    return float(1.0 - np.mean((pred - y) ** 2) / max(np.var(y), 1e-12))


def fit_reader(a: Attribute, z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
               seed: int = 0) -> AttributeReader | None:
    """The better of the two probes for attribute ``a`` from codes (N, D) and values (N,) (NaN: missing), with
    its test score and verdict; None when the training codes hold a single value."""
    keep, keep_test = np.isfinite(y_train), np.isfinite(y_test)
    z, y = np.asarray(z_train, np.float64)[keep], y_train[keep].astype(np.float64)
    zt, yt = np.asarray(z_test, np.float64)[keep_test], y_test[keep_test].astype(np.float64)
    if len(np.unique(y)) < 2 or len(y) < 10 or len(yt) == 0:
        return None
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))[:MAX_FIT]
    cut = max(1, int(len(order) * HELD_OUT))
    val, fit = order[:cut], order[cut:]
    if len(np.unique(y[fit])) < 2:
        return None
    methods = ("logistic", "knn")
    scores = [_score(_candidate(a, m, z[fit], y[fit]), z[val], y[val]) for m in methods]
    best = methods[int(np.argmax(scores))]
    reader = _candidate(a, best, z[order], y[order])
    score = _score(reader, zt, yt)
    if a.discrete:
        values, counts = np.unique(y, return_counts=True)
        chance = float(np.mean(yt == values[counts.argmax()]))
        told = score > chance + 2 * math.sqrt(max(chance * (1 - chance), 1e-12) / len(yt))
        return AttributeReader(a, best, reader.params, score, chance, bool(told)).attach(z[order], y[order])
    pred_val, _ = _candidate(a, best, z[fit], y[fit]).predict(z[val])
    spread = float(np.std(pred_val - y[val]))
    return AttributeReader(a, best, reader.params, score, 0.0, score >= MIN_R2, spread).attach(z[order], y[order])
