"""'hvae': a hierarchical VAE with L stochastic layers (Burda et al. 2016's two-layer model, Sonderby et al. 2016).

The code z (B, D) is the concatenation [z_1, ..., z_L] of the layers, bottom first (latent_dim split across
them), so every latent verb sees one flat code. The generative model is top-down,

    p(z_L) = N(0, I),  p(z_l | z_{l+1}) = N(mu, sigma^2) from a small net,  p(x | z_1, ..., z_L) (the decoder),

and inference bottom-up: q(z_1 | x) from the encoder, q(z_{l+1} | z_l) from small nets. The KL is the sum of
one term per layer, each log q - log p at the posterior's sample; free bits (--free-bits nats per layer) stop
a layer's KL from being pushed below that floor, so no layer collapses early (Kingma et al. 2016).
"""
from __future__ import annotations

import torch
from torch import nn

from latentspace.models.objectives.base import Objective, ObjectiveTerms
from latentspace.models.posterior import log_normal
from latentspace.models.priors import Prior

MIN_HIDDEN = 64


def layer_dims(latent_dim: int, layers: int) -> list[int]:
    """latent_dim split over the layers, bottom first; the lower layers take the remainder."""
    base, extra = divmod(latent_dim, layers)
    return [base + (1 if i < extra else 0) for i in range(layers)]


def gaussian_net(n_in: int, n_out: int, hidden: int) -> nn.Sequential:
    """(…, n_in) -> (…, 2 n_out): mean and log-variance of a diagonal Gaussian."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, 2 * n_out))


def _chunks(net: nn.Module, parent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, logvar = net(parent).float().chunk(2, dim=-1)
    return mean, logvar.clamp(-30.0, 20.0)


class HierarchicalPosterior:
    """q(z|x) = q(z_1|x) prod_l q(z_{l+1}|z_l). ``mean`` follows the chain of means."""

    has_density = True

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor, up: nn.ModuleList, dims: list[int]) -> None:
        self.first = (mean, logvar.clamp(-30.0, 20.0))
        self.up, self.dims = up, dims
        means, logvars = [self.first[0]], [self.first[1]]
        for net in up:
            m, lv = _chunks(net, means[-1])
            means.append(m)
            logvars.append(lv)
        self.mean, self.logvar = torch.cat(means, -1), torch.cat(logvars, -1)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        mean, logvar = self.first
        layers = []
        for net in (None, *self.up):
            if net is not None:
                mean, logvar = _chunks(net, layers[-1])
            eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            layers.append(mean + torch.exp(0.5 * logvar) * eps)
        return torch.cat(layers, -1)

    def layer_log_probs(self, z: torch.Tensor) -> list[torch.Tensor]:
        """log q of each layer at z (..., D), bottom first: L tensors (...)."""
        parts = z.split(self.dims, dim=-1)
        out = [log_normal(parts[0], *self.first).sum(-1)]
        for net, parent, part in zip(self.up, parts[:-1], parts[1:]):
            out.append(log_normal(part, *_chunks(net, parent)).sum(-1))
        return out

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.layer_log_probs(z)).sum(0)


class HierarchicalPrior(Prior):
    """p(z) = N(z_L; 0, I) prod_l p(z_l | z_{l+1})."""

    title = "top-down hierarchy"

    def __init__(self, dims: list[int], hidden: int) -> None:
        super().__init__(sum(dims))
        self.dims = dims
        self.down = nn.ModuleList(gaussian_net(dims[i + 1], dims[i], hidden) for i in range(len(dims) - 1))

    def layer_log_probs(self, z: torch.Tensor) -> list[torch.Tensor]:
        """log p of each layer at z (..., D), bottom first."""
        parts = z.split(self.dims, dim=-1)
        out = [log_normal(part, *_chunks(net, parent)).sum(-1)
               for net, part, parent in zip(self.down, parts[:-1], parts[1:])]
        top = parts[-1]
        return [*out, log_normal(top, torch.zeros_like(top), torch.zeros_like(top)).sum(-1)]

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.layer_log_probs(z)).sum(0)

    def layer_kls(self, posterior: HierarchicalPosterior, z: torch.Tensor) -> torch.Tensor:
        """log q - log p of each layer at the posterior's sample z (B, D): (L, B), bottom first."""
        return torch.stack(posterior.layer_log_probs(z)) - torch.stack(self.layer_log_probs(z))

    def kl(self, posterior, z: torch.Tensor) -> torch.Tensor:
        return self.layer_kls(posterior, z).sum(0)

    def sample(self, n: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        ref = next(self.parameters()) if len(self.down) else torch.empty(0)
        layers = [torch.randn(n, self.dims[-1], generator=generator, device=ref.device)]
        for net in reversed(self.down):
            mean, logvar = _chunks(net, layers[0])
            eps = torch.randn(mean.shape, generator=generator, device=mean.device)
            layers.insert(0, mean + torch.exp(0.5 * logvar) * eps)
        return torch.cat(layers, -1).to(device)


class HVAE(Objective):
    name = "hvae"
    help = "hierarchical VAE: --layers stochastic layers (top-down prior, bottom-up inference), --free-bits"
    options = ("layers", "free_bits")

    def __init__(self, config) -> None:
        super().__init__(config)
        self.dims = layer_dims(config.latent_dim, config.layers) if config.layers <= config.latent_dim else []
        hidden = max(config.hidden, MIN_HIDDEN)
        self.up = nn.ModuleList(gaussian_net(self.dims[i], self.dims[i + 1], hidden) for i in range(len(self.dims) - 1))

    @classmethod
    def check(cls, c) -> None:
        if c.layers < 2 or c.layers > c.latent_dim:
            raise ValueError(f"ModelConfig.layers must be 2..latent_dim ({c.latent_dim}) for 'hvae', got {c.layers}")

    def encoder_outputs(self) -> int:
        return 2 * self.dims[0]

    def posterior(self, h: torch.Tensor) -> HierarchicalPosterior:
        mean, logvar = h.chunk(2, dim=1)
        return HierarchicalPosterior(mean, logvar, self.up, self.dims)

    def make_prior(self, encode) -> Prior:
        return HierarchicalPrior(self.dims, max(self.config.hidden, MIN_HIDDEN))

    def loss_terms(self, model, x, target, generator, kl_weight, dataset_size):
        out = model(x, generator)
        recon = model.recon_nll(out.params, target).mean()
        layer_kl = model.prior.layer_kls(out.posterior, out.z).mean(1)  # (L,)
        kl = layer_kl.sum()
        floor = self.config.free_bits
        reg = layer_kl.clamp_min(floor).sum() if floor > 0 else kl
        terms = {f"kl_layer{i + 1}": v for i, v in enumerate(layer_kl)}
        return ObjectiveTerms(out, recon, kl, recon + kl_weight * reg, terms)
