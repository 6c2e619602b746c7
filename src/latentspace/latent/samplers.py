"""Where to draw new codes from: the prior N(0, I), or a Gaussian mixture fitted to the training codes
(an ex-post density estimate, as in Ghosh et al. 2020 and Pythae's GMM sampler), which keeps samples in
the regions the decoder was trained on when the aggregate posterior does not fill the prior.

All draws go through the caller's generator (numpy or torch); nothing here touches global RNG state.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

Generator = np.random.Generator | torch.Generator
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def standard_normal(shape: tuple[int, ...], generator: Generator) -> np.ndarray:
    """N(0, 1) draws of ``shape`` (float64) from a numpy or torch generator."""
    if isinstance(generator, np.random.Generator):
        return generator.standard_normal(shape)
    if isinstance(generator, torch.Generator):
        return torch.randn(shape, generator=generator, dtype=torch.float64, device=generator.device).cpu().numpy()
    raise TypeError(f"generator must be a numpy.random.Generator or torch.Generator, got {type(generator).__name__}")


def uniform(n: int, generator: Generator) -> np.ndarray:
    """U[0, 1) draws (n,) float64 from a numpy or torch generator."""
    if isinstance(generator, np.random.Generator):
        return generator.random(n)
    if isinstance(generator, torch.Generator):
        return torch.rand(n, generator=generator, dtype=torch.float64, device=generator.device).cpu().numpy()
    raise TypeError(f"generator must be a numpy.random.Generator or torch.Generator, got {type(generator).__name__}")


class PriorSampler:
    """Draws from the prior N(0, I) over ``latent_dim`` axes."""

    def __init__(self, latent_dim: int) -> None:
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = int(latent_dim)

    def sample(self, n: int, generator: Generator) -> np.ndarray:
        """(n, D) float32."""
        return standard_normal((int(n), self.latent_dim), generator).astype(np.float32)

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log N(z; 0, I) for z (N, D) -> (N,) nats."""
        z = np.asarray(z, dtype=np.float64)
        return -0.5 * (z**2).sum(1) - 0.5 * self.latent_dim * np.log(2 * np.pi)


def torch_seed(generator: Generator) -> int:
    """A seed for a fresh torch generator, drawn from a numpy or torch generator (so one seed still fixes all)."""
    return int(uniform(1, generator)[0] * 2**62)


class ModelPriorSampler:
    """Draws from a model's own prior (p(z) of models.priors: the VampPrior's mixture, the hierarchy's top-down
    chain, the codebook), through the caller's generator."""

    def __init__(self, model) -> None:
        self.model = model
        self.latent_dim = int(model.config.latent_dim)

    def sample(self, n: int, generator: Generator) -> np.ndarray:
        """(n, D) float32."""
        device = next(self.model.parameters()).device
        gen = torch.Generator(device=device).manual_seed(torch_seed(generator))
        with torch.inference_mode():
            return self.model.prior.sample(int(n), gen, device).float().cpu().numpy()


class Snapped:
    """Another sampler's codes moved onto a discrete model's codebook (``snap``: VQ-VAE's nearest entries)."""

    def __init__(self, sampler, snap) -> None:
        self.sampler, self.snap = sampler, snap
        self.latent_dim = sampler.latent_dim

    def sample(self, n: int, generator: Generator) -> np.ndarray:
        z = torch.from_numpy(np.ascontiguousarray(self.sampler.sample(n, generator), dtype=np.float32))
        with torch.inference_mode():
            return self.snap(z).cpu().numpy()


def full_covariances(covariances: np.ndarray, covariance_type: str, k: int, d: int) -> np.ndarray:
    """sklearn's per-type covariance storage -> (K, D, D)."""
    c = np.asarray(covariances, dtype=np.float64)
    expected = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]
    if c.shape != expected:
        raise ValueError(f"covariances for covariance_type {covariance_type!r} must be {expected}, got {c.shape}")
    if covariance_type == "full":
        return c
    if covariance_type == "tied":
        return np.broadcast_to(c, (k, d, d)).copy()
    if covariance_type == "diag":
        return np.einsum("kd,de->kde", c, np.eye(d))
    return c[:, None, None] * np.eye(d)


class GMMSampler:
    """A Gaussian mixture over codes. ``fit(latents)`` returns self; fitted state: weights_ (K,), means_ (K, D),
    covariances_ (sklearn's shape for ``covariance_type``)."""

    def __init__(self, n_components: int = 10, covariance_type: str = "full", seed: int = 0) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.seed = seed

    def _check(self) -> None:
        if self.covariance_type not in COVARIANCE_TYPES:
            allowed = ", ".join(COVARIANCE_TYPES)
            raise ValueError(f"covariance_type must be one of {allowed}, got {self.covariance_type!r}")
        if self.n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {self.n_components}")

    def fit(self, latents: np.ndarray) -> "GMMSampler":
        """Fit by EM (sklearn) on codes (N, D); seeded, so refitting gives the same mixture."""
        self._check()
        z = np.asarray(latents, dtype=np.float64)
        if z.ndim != 2 or len(z) < self.n_components:
            raise ValueError(f"latents must be (N, D) with N >= n_components={self.n_components}, got {z.shape}")
        gm = GaussianMixture(self.n_components, covariance_type=self.covariance_type, random_state=self.seed,
                             reg_covar=1e-6, max_iter=200)
        gm.fit(z)
        return self._set(gm.weights_, gm.means_, gm.covariances_)

    def _set(self, weights, means, covariances) -> "GMMSampler":
        self.weights_ = np.asarray(weights, dtype=np.float64)
        self.means_ = np.asarray(means, dtype=np.float64)
        k, d = self.means_.shape
        if self.weights_.shape != (k,) or not np.isclose(self.weights_.sum(), 1.0):
            raise ValueError(f"GMM weights must be ({k},) summing to 1, got {self.weights_.shape} sum "
                             f"{self.weights_.sum():.6g}")
        self.covariances_ = np.asarray(covariances, dtype=np.float64)
        self._full = full_covariances(self.covariances_, self.covariance_type, k, d)
        self._cholesky = np.linalg.cholesky(self._full)  # raises LinAlgError if a covariance is not PD
        return self

    @property
    def latent_dim(self) -> int:
        if not hasattr(self, "means_"):
            raise ValueError("GMMSampler is not fitted: call fit(latents) or GMMSampler.from_dict(state) first")
        return int(self.means_.shape[1])

    def sample(self, n: int, generator: Generator) -> np.ndarray:
        """(n, D) float32: a component per draw by its weight, then mean + L eps with L the Cholesky factor."""
        d = self.latent_dim  # raises when not fitted
        u = uniform(int(n), generator)
        component = np.minimum(np.searchsorted(np.cumsum(self.weights_), u, side="right"), len(self.weights_) - 1)
        eps = standard_normal((int(n), d), generator)
        z = self.means_[component] + np.einsum("nij,nj->ni", self._cholesky[component], eps)
        return z.astype(np.float32)

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log p(z) under the mixture, z (N, D) -> (N,) nats."""
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"codes must be (N, {self.latent_dim}), got shape {z.shape}")
        per_component = np.stack(
            [multivariate_normal(m, c).logpdf(z).reshape(len(z)) for m, c in zip(self.means_, self._full)], axis=1
        )
        return logsumexp(per_component + np.log(self.weights_), axis=1)

    def to_dict(self) -> dict:
        """JSON-ready state (constructor arguments and fitted parameters)."""
        return {
            "n_components": self.n_components, "covariance_type": self.covariance_type, "seed": self.seed,
            "weights": self.weights_.tolist(), "means": self.means_.tolist(), "covariances": self.covariances_.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "GMMSampler":
        missing = {"n_components", "covariance_type", "weights", "means", "covariances"} - set(d)
        if missing:
            raise ValueError(f"GMM sampler state is missing {sorted(missing)}")
        out = cls(int(d["n_components"]), str(d["covariance_type"]), int(d.get("seed", 0)))
        out._check()
        if len(d["weights"]) != out.n_components:
            raise ValueError(f"GMM sampler state has {len(d['weights'])} weights, n_components is {out.n_components}")
        return out._set(d["weights"], d["means"], d["covariances"])
