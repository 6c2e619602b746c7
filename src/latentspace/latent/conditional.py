"""A conditional prior over codes: the latent diffusion prior's denoiser, told the image's attributes, and
sampled with classifier-free guidance (Ho & Salimans 2022).

Each attribute adds an embedding to the step's: a learned vector per value of a discrete attribute, a learned
vector times the standardised value of a continuous one, and nothing for a missing value. In training the
whole condition is dropped (every attribute missing) with probability ``drop``, so the same net also predicts
the unconditional noise. Sampling mixes the two predictions:

    eps = eps(z_t, t, nothing) + guidance * (eps(z_t, t, attributes) - eps(z_t, t, nothing))

guidance 0 samples the unconditional prior, 1 the conditional one, above 1 leans further towards the
attributes (sharper agreement, less variety).

    prior = ConditionalPrior(DiffusionConfig(latent_dim=16), classes=(5, 2, 0)).fit(z, conditions)
    z = prior.sample(conditions[:64], np.random.default_rng(0), guidance=2.0)
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from latentspace.latent.diffusion import (
    Denoiser,
    DiffusionConfig,
    cosine_alpha_bar,
    ddim_sample,
    diffusion_step,
    load_denoiser,
    time_embedding,
    train_ema,
)  # fmt: skip
from latentspace.latent.samplers import Generator
from latentspace.utils.progress import NULL_PROGRESS, Progress

DROP = 0.15
DEFAULT_GUIDANCE = 1.0  # benchmarks/describe_draw.py: MNIST classes 0.973 and recall 0.71 at 1, recall 0.55 at 2


class ConditionalDenoiser(Denoiser):
    """eps_theta(z_t, t, c): c (B, A) float32 attribute values (value indices of discrete ones, standardised
    numbers of continuous ones, NaN: not given)."""

    def __init__(self, config: DiffusionConfig, classes: tuple[int, ...]) -> None:
        super().__init__(config)
        h = config.hidden
        self.classes = tuple(int(k) for k in classes)
        self.conditions = nn.ModuleList(nn.Embedding(k, h) if k else nn.Linear(1, h, bias=False) for k in self.classes)

    def forward(self, z: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        e = self.time(time_embedding(t, self.timesteps))
        if c is not None:
            e = e + self.condition(c)
        return self.trunk(z, e)

    def condition(self, c: torch.Tensor) -> torch.Tensor:
        given = torch.isfinite(c)
        values = torch.where(given, c, torch.zeros_like(c))
        out: torch.Tensor | float = 0.0
        for j, (k, layer) in enumerate(zip(self.classes, self.conditions)):
            part = layer(values[:, j].long().clamp(0, k - 1)) if k else layer(values[:, j : j + 1])
            out = out + part * given[:, j : j + 1]
        return out


class ConditionalPrior:
    """A fitted conditional diffusion prior: ``fit(z, conditions)`` returns self; ``sample(conditions,
    generator, guidance)`` draws one code per row of conditions."""

    def __init__(self, config: DiffusionConfig, classes: tuple[int, ...], drop: float = DROP) -> None:
        if not classes:
            raise ValueError("a conditional prior needs at least one attribute")
        if not 0 < drop < 1:
            raise ValueError(f"drop must be in (0, 1), got {drop}")
        self.config, self.classes, self.drop = config, tuple(int(k) for k in classes), float(drop)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def _standard(self, conditions: np.ndarray) -> torch.Tensor:
        c = np.array(conditions, dtype=np.float32, copy=True)
        if c.ndim != 2 or c.shape[1] != len(self.classes):
            raise ValueError(f"conditions must be (N, {len(self.classes)}), got shape {c.shape}")
        for j, k in enumerate(self.classes):
            if k:
                bad = np.isfinite(c[:, j]) & ((c[:, j] < 0) | (c[:, j] >= k) | (c[:, j] != np.round(c[:, j])))
                if bad.any():
                    raise ValueError(f"condition column {j} holds {c[bad, j][0]}, expected a value index 0..{k - 1}")
            else:
                c[:, j] = (c[:, j] - self.cond_mean_[j]) / self.cond_std_[j]
        return torch.from_numpy(c)

    def fit(self, latents: np.ndarray, conditions: np.ndarray, progress: Progress = NULL_PROGRESS
            ) -> "ConditionalPrior":
        """Train on codes (N, D) and their attribute values (N, A) for ``config.train_steps`` seeded steps."""
        cfg = self.config
        z = np.asarray(latents, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != cfg.latent_dim or len(z) < 2 or not np.isfinite(z).all():
            raise ValueError(f"codes must be finite (N >= 2, {cfg.latent_dim}), got shape {z.shape}")
        if len(conditions) != len(z):
            raise ValueError(f"{len(z)} codes but {len(conditions)} rows of conditions")
        c = np.asarray(conditions, np.float64)
        self.mean_, self.std_ = z.mean(0), z.std(0) + 1e-6
        self.cond_mean_ = np.array([np.nanmean(c[:, j]) if not k else 0.0 for j, k in enumerate(self.classes)],
                                   np.float32)
        self.cond_std_ = np.array([np.nanstd(c[:, j]) + 1e-6 if not k else 1.0 for j, k in enumerate(self.classes)],
                                  np.float32)
        data, cond = torch.from_numpy((z - self.mean_) / self.std_), self._standard(conditions)
        gen = torch.Generator().manual_seed(cfg.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            net = ConditionalDenoiser(cfg, self.classes)
        alpha_bar = cosine_alpha_bar(cfg.timesteps).float()
        nothing = torch.full((1, len(self.classes)), float("nan"))

        def step(optimizer: torch.optim.Optimizer) -> torch.Tensor:
            idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
            dropped = torch.rand(cfg.batch_size, 1, generator=gen) < self.drop
            c = torch.where(dropped, nothing, cond[idx])
            return diffusion_step(lambda x, t: net(x, t, c), optimizer, data[idx], alpha_bar, gen)

        self.denoiser_, loss = train_ema(net, cfg, step, progress, "conditional prior")
        self.final_loss_ = float(loss)
        return self

    def sample(self, conditions: np.ndarray, generator: Generator, guidance: float = DEFAULT_GUIDANCE,
               steps: int | None = None, eta: float | None = None) -> np.ndarray:
        """(n, D) float32 codes, one per row of conditions (n, A) (NaN: leave that attribute to the prior)."""
        if not hasattr(self, "denoiser_"):
            raise ValueError("ConditionalPrior is not fitted: call fit(codes, conditions) or load it first")
        if not (guidance >= 0 and np.isfinite(guidance)):
            raise ValueError(f"guidance must be a finite number >= 0, got {guidance}")
        c = self._standard(conditions)
        nothing = torch.full_like(c, float("nan"))
        net = self.denoiser_

        def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if guidance == 0:
                return net(x, t, nothing)
            both = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([c, nothing]))
            eps_c, eps_u = both.chunk(2)
            return eps_u + guidance * (eps_c - eps_u)

        cfg = self.config
        steps = cfg.sample_steps if steps is None else int(steps)
        eta = cfg.eta if eta is None else float(eta)
        x = ddim_sample(guided, (len(c), self.latent_dim), generator, cfg.timesteps, steps, eta)
        return (x * self.std_ + self.mean_).astype(np.float32)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-ready metadata) for safetensors."""
        tensors = {f"denoiser.{k}": v.detach().contiguous() for k, v in self.denoiser_.state_dict().items()}
        for name in ("mean_", "std_", "cond_mean_", "cond_std_"):
            tensors[name.rstrip("_")] = torch.from_numpy(np.asarray(getattr(self, name), np.float32))
        return tensors, {"config": self.config.to_dict(), "classes": list(self.classes), "drop": self.drop,
                         "final_loss": self.final_loss_}

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> "ConditionalPrior":
        prior = cls(DiffusionConfig.from_dict(meta["config"]), tuple(meta["classes"]), float(meta["drop"]))
        prior.denoiser_ = load_denoiser(ConditionalDenoiser(prior.config, prior.classes), tensors, "conditional prior")
        prior.final_loss_ = float(meta.get("final_loss", np.nan))
        for name in ("mean", "std", "cond_mean", "cond_std"):
            setattr(prior, name + "_", tensors[name].numpy())
        return prior
