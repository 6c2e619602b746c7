"""A learned prior over codes: a small denoising diffusion model in latent space (the idea behind latent
diffusion, Rombach et al. 2022), trained with DDPM's noise-prediction loss (Ho et al. 2020) and sampled with
DDIM's generalised sampler (Song et al. 2021).

The codes are standardised per axis first (mean 0, std 1 over the training codes), so one noise schedule fits
any model. The denoiser is an MLP with residual blocks and a sinusoidal time embedding added to each block.
Training keeps an exponential moving average of the weights, which is what samples; it is seeded, so the same
codes and config give the same prior.

    prior = DiffusionPrior(DiffusionConfig(latent_dim=16)).fit(z_train)
    z = prior.sample(1000, np.random.default_rng(0), steps=50)   # eta=0 for deterministic DDIM
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from latentspace.latent.samplers import Generator, standard_normal
from latentspace.utils.progress import NULL_PROGRESS, Progress

TIME_FEATURES = 64
PROGRESS_EVERY = 50
X0_LIMIT = 5.0  # standardised codes: the predicted clean code is clamped here (at t = T it is otherwise 1/eps)


@dataclass(frozen=True)
class DiffusionConfig:
    """latent_dim: D. hidden / blocks: MLP width and residual blocks. timesteps: T of the cosine noise schedule.
    train_steps, batch_size, lr: AdamW with a cosine decay; ema: decay of the sampled weights. sample_steps, eta:
    DDIM's defaults (eta 1, ancestral noise, matched the codes' covariance better than deterministic eta 0 in
    tests/test_diffusion.py's mixture). seed: initial weights and batch draws."""

    latent_dim: int
    hidden: int = 256
    blocks: int = 3
    timesteps: int = 1000
    train_steps: int = 4000
    batch_size: int = 512
    lr: float = 2e-3
    ema: float = 0.995
    sample_steps: int = 50
    eta: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("latent_dim", "hidden", "blocks", "timesteps", "train_steps", "batch_size", "sample_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DiffusionConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)) or not 0 <= self.ema < 1 or not 0 <= self.eta <= 1:
            raise ValueError(f"DiffusionConfig needs lr > 0, 0 <= ema < 1 and 0 <= eta <= 1, got {self.lr}, "
                             f"{self.ema} and {self.eta}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffusionConfig":
        fields = set(cls.__dataclass_fields__)
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"diffusion prior config has unknown fields {sorted(unknown)}")
        return cls(**d)


def cosine_alpha_bar(timesteps: int) -> torch.Tensor:
    """(T + 1,) float64 cumulative signal fraction of Nichol & Dhariwal's cosine schedule, alpha_bar(0) = 1."""
    s = 0.008
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (f / f[0]).clamp(min=1e-8, max=1.0)


def time_embedding(t: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Sinusoidal features (B, TIME_FEATURES) of integer steps t (B,)."""
    half = TIME_FEATURES // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = (t.float() / timesteps * 1000.0)[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class Denoiser(nn.Module):
    """eps_theta(z_t, t): (B, D) noisy standardised codes and steps (B,) -> predicted noise (B, D)."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        h = config.hidden
        self.timesteps = config.timesteps
        self.inp = nn.Linear(config.latent_dim, h)
        self.time = nn.Sequential(nn.Linear(TIME_FEATURES, h), nn.SiLU(), nn.Linear(h, h))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(h), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, h)) for _ in range(config.blocks)
        )
        self.out = nn.Sequential(nn.LayerNorm(h), nn.SiLU(), nn.Linear(h, config.latent_dim))

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.trunk(z, self.time(time_embedding(t, self.timesteps)))

    def trunk(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """The residual MLP on codes z (B, D) given the step's embedding e (B, hidden)."""
        x = self.inp(z)
        for block in self.blocks:
            x = x + block(x + e)
        return self.out(x)


class DiffusionPrior:
    """A fitted diffusion model over codes: ``fit(z)`` returns self; fitted state ``denoiser_`` (the EMA
    weights), ``mean_`` and ``std_`` (D,) of the standardisation, ``final_loss_``."""

    def __init__(self, config: DiffusionConfig) -> None:
        self.config = config

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def fit(self, latents: np.ndarray, progress: Progress = NULL_PROGRESS) -> "DiffusionPrior":
        """Train on codes (N, D) for ``config.train_steps`` steps of random minibatches (seeded)."""
        cfg = self.config
        z = np.asarray(latents, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != cfg.latent_dim or len(z) < 2 or not np.isfinite(z).all():
            raise ValueError(f"codes must be finite (N >= 2, {cfg.latent_dim}), got shape {z.shape}")
        self.mean_, self.std_ = z.mean(0), z.std(0) + 1e-6
        data = torch.from_numpy((z - self.mean_) / self.std_)
        gen = torch.Generator().manual_seed(cfg.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            net = Denoiser(cfg)
        alpha_bar = cosine_alpha_bar(cfg.timesteps).float()
        ema, loss = train_ema(net, cfg, lambda opt: _train_step(net, opt, data, alpha_bar, cfg, gen), progress)
        self.denoiser_, self.final_loss_ = ema, float(loss)
        return self

    def sample(self, n: int, generator: Generator, steps: int | None = None, eta: float | None = None) -> np.ndarray:
        """(n, D) float32 codes by DDIM's generalised sampler (``ddim_sample``) with ``steps`` steps (default
        config.sample_steps) and ``eta`` (default config.eta), every random draw from ``generator``."""
        if not hasattr(self, "denoiser_"):
            raise ValueError("DiffusionPrior is not fitted: call fit(codes) or load it first")
        steps = self.config.sample_steps if steps is None else int(steps)
        eta = self.config.eta if eta is None else float(eta)
        x = ddim_sample(self.denoiser_, (int(n), self.latent_dim), generator, self.config.timesteps, steps, eta)
        return (x * self.std_ + self.mean_).astype(np.float32)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-ready metadata) for safetensors."""
        tensors = {f"denoiser.{k}": v.detach().contiguous() for k, v in self.denoiser_.state_dict().items()}
        tensors["mean"], tensors["std"] = torch.from_numpy(self.mean_), torch.from_numpy(self.std_)
        return tensors, {"config": self.config.to_dict(), "final_loss": self.final_loss_}

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> "DiffusionPrior":
        prior = cls(DiffusionConfig.from_dict(meta["config"]))
        prior.denoiser_ = load_denoiser(Denoiser(prior.config), tensors, "diffusion prior")
        prior.final_loss_ = float(meta.get("final_loss", math.nan))
        prior.mean_, prior.std_ = tensors["mean"].numpy(), tensors["std"].numpy()
        return prior


def load_denoiser(net: nn.Module, tensors: dict[str, torch.Tensor], what: str) -> nn.Module:
    """``net`` (in eval mode) with the ``denoiser.*`` tensors of a stored prior; ValueError naming ``what`` when
    their names or shapes are not the net's."""
    weights = {k.removeprefix("denoiser."): v for k, v in tensors.items() if k.startswith("denoiser.")}
    expected = net.state_dict()
    if set(weights) != set(expected) or any(weights[k].shape != expected[k].shape for k in expected):
        raise ValueError(f"{what} weights do not match its config")
    net.load_state_dict(weights)
    return net.eval()


def train_ema(net: nn.Module, cfg: DiffusionConfig, step: Callable[[torch.optim.Optimizer], torch.Tensor],
              progress: Progress, label: str = "diffusion prior") -> tuple[nn.Module, torch.Tensor]:
    """``cfg.train_steps`` calls of ``step(optimizer)`` (one optimiser step each, returning its loss) under AdamW
    with a cosine decay, keeping an exponential moving average of the weights; returns (EMA net, last loss)."""
    ema = copy.deepcopy(net).requires_grad_(False)
    # fused: torch's CPU default loops over the tensors in Python, a third of this small net's step
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0, fused=True)
    ema_params, net_params = list(ema.parameters()), list(net.parameters())
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.train_steps)
    progress.start(cfg.train_steps, label)
    try:
        for i in range(1, cfg.train_steps + 1):
            loss = step(optimizer)
            schedule.step()
            with torch.no_grad():
                torch._foreach_lerp_(ema_params, net_params, 1.0 - cfg.ema)
            if i % PROGRESS_EVERY == 0 or i == cfg.train_steps:
                progress.advance(PROGRESS_EVERY if i % PROGRESS_EVERY == 0 else i % PROGRESS_EVERY, loss=float(loss))
    finally:
        progress.close()
    return ema.eval(), loss


def _train_step(net: nn.Module, optimizer: torch.optim.Optimizer, data: torch.Tensor, alpha_bar: torch.Tensor,
                cfg: DiffusionConfig, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
    return diffusion_step(net, optimizer, data[idx], alpha_bar, gen)


def diffusion_step(net: nn.Module, optimizer: torch.optim.Optimizer, x0: torch.Tensor, alpha_bar: torch.Tensor,
                   gen: torch.Generator) -> torch.Tensor:
    """One optimiser step of DDPM's noise-prediction loss on clean data x0 (B, ...) at uniformly random steps
    t in 1..T (T = len(alpha_bar) - 1); ``net(x_t, t)`` predicts the noise. Returns the loss."""
    t = torch.randint(1, len(alpha_bar), (len(x0),), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    a = alpha_bar[t].view(-1, *([1] * (x0.dim() - 1)))
    loss = (net(a.sqrt() * x0 + (1 - a).sqrt() * noise, t) - noise).pow(2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def ddim_sample(net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], shape: tuple[int, ...],
                generator: Generator, timesteps: int, steps: int, eta: float = 1.0, x0_limit: float = X0_LIMIT) -> np.ndarray:
    """Samples of shape (B, ...) from a noise-prediction network by DDIM's generalised sampler (Song et al. 2021)
    over ``steps`` evenly spaced steps of the cosine schedule of ``timesteps``: eta 0 is deterministic DDIM, 1
    adds DDPM's ancestral noise at every step. Every random draw comes from ``generator``; the predicted clean
    data is clamped to +-x0_limit. Returns float64 numpy."""
    if not 1 <= steps <= timesteps or not 0 <= eta <= 1:
        raise ValueError(f"steps must be in 1..{timesteps} and eta in 0..1, got {steps} and {eta}")
    x = torch.from_numpy(standard_normal(shape, generator)).double()
    alpha_bar = cosine_alpha_bar(timesteps)
    ts = np.unique(np.linspace(timesteps, 0, steps + 1).round().astype(np.int64))[::-1]
    with torch.inference_mode():
        for t, t_next in zip(ts[:-1], ts[1:]):
            eps = net(x.float(), torch.full((shape[0],), int(t))).double()
            a, a_next = alpha_bar[t], alpha_bar[t_next]
            x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-x0_limit, x0_limit)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()  # the noise consistent with the clamped x0
            sigma = eta * ((1 - a_next) / (1 - a) * (1 - a / a_next)).sqrt()
            x = a_next.sqrt() * x0 + (1 - a_next - sigma**2).clamp(min=0).sqrt() * eps
            if eta > 0 and t_next > 0:
                x = x + sigma * torch.from_numpy(standard_normal(shape, generator))
    return x.numpy()
