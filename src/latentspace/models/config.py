"""ModelConfig: everything needed to rebuild a model, validated once, never edited."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from latentspace.models.adversary import GAN_START, GAN_WIDTH
from latentspace.models.detail import DETAIL_TERMS
from latentspace.models.likelihoods import LIKELIHOODS
from latentspace.models.nets import ARCHS, default_arch
from latentspace.models.objectives import OBJECTIVES

MIN_SIZE, MAX_SIZE = 16, 256


def default_likelihood(channels: int) -> str:
    """Grey images (digits, sprites) are near-binary ink: Bernoulli. Colour images: Gaussian with learned sigma."""
    return "bernoulli" if channels == 1 else "gaussian"


NEAR_BINARY = 0.85  # share of pixels within 10% of black or white above which grey images count as ink


def likelihood_for_pixels(images) -> str:
    """The default likelihood for a set of uint8 images (N, C, H, W): Bernoulli for near-binary grey images (ink:
    digits, sprites), else Gaussian with a learned sigma. Grey photos are not ink: under a Bernoulli likelihood
    their mid-tones cost little, so the KL term wins and details blur towards the mean face."""
    import numpy as np

    sample = np.asarray(images[:1000])
    if sample.shape[1] != 1:
        return "gaussian"
    return "bernoulli" if float(((sample <= 25) | (sample >= 230)).mean()) >= NEAR_BINARY else "gaussian"


# The settings only some families read: field -> what it means (the CLI's --help names the families too).
FAMILY_FIELDS = {
    "k": "importance samples per image in the training bound",
    "pseudo_inputs": "learned pseudo-inputs of the VampPrior mixture",
    "mmd_weight": "weight of the MMD between the codes and N(0, I) (IMQ kernel)",
    "dip_weight": "weight of the off-diagonal covariance penalty (the diagonal one is 10x for DIP-I, 1x for II)",
    "codebook": "codes in the shared codebook",
    "code_dim": "axes per quantised group (latent_dim must be a multiple)",
    "commitment": "weight pulling the encoder's output towards its code (per axis, nats per image)",
    "layers": "stochastic layers of the hierarchy (latent_dim is split across them)",
    "free_bits": "nats per layer below which the KL is not penalised (0 = off)",
}
DETAIL_FLOATS = ("ssim_weight", "ffl_weight", "gan_weight")
FAMILY_INTS = ("k", "pseudo_inputs", "codebook", "code_dim", "layers")
FAMILY_FLOATS = ("mmd_weight", "dip_weight", "commitment", "free_bits")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class ModelConfig:
    """A generative autoencoder: an encoder/decoder family sized to ``image_shape`` and one objective.

    image_shape: (C, H, W) with C in {1, 3}, square H = W in [16, 256] (28, 32, 64 and 128 are the tested sizes).
    objective: a name in models.objectives.OBJECTIVES ('ae', 'vae', 'beta-vae', 'beta-tcvae', ...).
    arch: a name in models.nets.ARCHS ('plain', 'resnet'); None picks by image side (nets.default_arch).
    likelihood: 'bernoulli' or 'gaussian'; None picks from the channels (see default_likelihood).
    sigma: Gaussian std; None learns one scalar log-sigma. binarize: dynamic binarisation of Bernoulli targets in training.
    width: channels of the first stage (None: the family's default for the image side). hidden: dense head width.
    smallest_side: stride-2 stages halve the image until its side is at most this; the dense head reads that
    map (None: the family's default; runs saved before the field used the family's legacy one).
    attention: self-attention at the lowest resolution ('resnet' only).
    ssim_weight, ffl_weight: detail-keeping terms added to the training loss (models.detail), 0 = off.
    gan_weight: a PatchGAN adversary on the reconstructions (models.adversary), 0 = off; gan_start: optimiser
    steps before it joins; gan_width: the discriminator's first channels.
    Family settings (each read by the families whose ``options`` name it; FAMILY_FIELDS says what they mean):
    k, pseudo_inputs, mmd_weight, dip_weight, codebook, code_dim, commitment, layers, free_bits.
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 16
    objective: str = "vae"
    beta: float = 4.0
    alpha: float = 1.0
    gamma: float = 1.0
    likelihood: str | None = None
    sigma: float | None = None
    binarize: bool = False
    width: int | None = None
    hidden: int = 256
    smallest_side: int | None = None
    arch: str | None = None
    attention: bool = False
    ssim_weight: float = 0.0
    ffl_weight: float = 0.0
    gan_weight: float = 0.0
    gan_start: int = GAN_START
    gan_width: int = GAN_WIDTH
    k: int = 5
    pseudo_inputs: int = 50
    mmd_weight: float = 100.0
    dip_weight: float = 10.0
    codebook: int = 512
    code_dim: int = 4
    commitment: float = 0.25
    layers: int = 2
    free_bits: float = 0.0

    def __post_init__(self) -> None:
        self._check_types()
        shape = tuple(int(s) for s in self.image_shape)
        object.__setattr__(self, "image_shape", shape)
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise ValueError(f"ModelConfig.image_shape must be (C, H, W) with C 1 or 3, got {shape}")
        if shape[1] != shape[2] or not MIN_SIZE <= shape[1] <= MAX_SIZE:
            raise ValueError(
                f"ModelConfig.image_shape must be square with side {MIN_SIZE}..{MAX_SIZE}, got {shape[1]}x{shape[2]}"
            )
        if not 1 <= self.latent_dim <= 1024:
            raise ValueError(f"ModelConfig.latent_dim must be in 1..1024, got {self.latent_dim}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"ModelConfig.objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.arch is None:
            object.__setattr__(self, "arch", default_arch(shape[1]))
        if self.arch not in ARCHS:
            raise ValueError(f"ModelConfig.arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.width is None:
            object.__setattr__(self, "width", ARCHS[self.arch].default_width(shape))
        if self.smallest_side is None:
            object.__setattr__(self, "smallest_side", ARCHS[self.arch].default_smallest)
        if not 1 <= self.smallest_side < shape[1]:
            raise ValueError(f"ModelConfig.smallest_side must be in 1..{shape[1] - 1} (below the image side), "
                             f"got {self.smallest_side}")
        if self.attention and self.arch != "resnet":
            raise ValueError(f"ModelConfig.attention needs arch 'resnet', got {self.arch!r}")
        if self.likelihood is None:
            object.__setattr__(self, "likelihood", default_likelihood(shape[0]))
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"ModelConfig.likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}")
        for name in FAMILY_INTS:
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("beta", "alpha", "gamma", *DETAIL_FLOATS, *FAMILY_FLOATS, "gan_start"):
            if getattr(self, name) < 0:
                raise ValueError(f"ModelConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.sigma is not None and self.sigma <= 0:
            raise ValueError(f"ModelConfig.sigma must be > 0 or None (learned), got {self.sigma}")
        if self.binarize and self.likelihood != "bernoulli":
            raise ValueError("ModelConfig.binarize needs likelihood 'bernoulli'")
        if self.gan_width < 1:
            raise ValueError(f"ModelConfig.gan_width must be >= 1, got {self.gan_width}")
        if self.width < 1 or self.hidden < 0:
            raise ValueError(f"ModelConfig.width must be >= 1 and hidden >= 0, got {self.width}, {self.hidden}")
        OBJECTIVES[self.objective].check(self)

    def _check_types(self) -> None:
        """JSON gives 16.0 for 16 and null for anything: catch those here, not deep inside torch."""
        if not isinstance(self.image_shape, (tuple, list)) or not all(_is_int(s) for s in self.image_shape):
            raise ValueError(f"ModelConfig.image_shape must be three integers, got {self.image_shape!r}")
        for name in ("latent_dim", "width", "hidden", "smallest_side", "gan_start", "gan_width", *FAMILY_INTS):
            if not _is_int(getattr(self, name)) and not (name in ("width", "smallest_side") and
                                                         getattr(self, name) is None):
                raise ValueError(f"ModelConfig.{name} must be an integer, got {getattr(self, name)!r}")
        for name in ("beta", "alpha", "gamma", "sigma", *DETAIL_FLOATS, *FAMILY_FLOATS):
            value = getattr(self, name)
            if not (value is None and name == "sigma") and not _is_finite(value):
                raise ValueError(f"ModelConfig.{name} must be a finite number, got {value!r}")
        for name in ("objective", "likelihood", "arch"):
            value = getattr(self, name)
            if not isinstance(value, str) and not (value is None and name in ("likelihood", "arch")):
                raise ValueError(f"ModelConfig.{name} must be a string, got {value!r}")
        for name in ("binarize", "attention"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"ModelConfig.{name} must be true or false, got {getattr(self, name)!r}")

    @property
    def is_variational(self) -> bool:
        return OBJECTIVES[self.objective].variational

    @property
    def detail_weights(self) -> dict[str, float]:
        """The detail terms' weights by name (models.detail.DETAIL_TERMS)."""
        return {name: getattr(self, f"{name}_weight") for name in DETAIL_TERMS}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        if not isinstance(d, dict):
            raise ValueError(f"model config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"model config has unknown fields {sorted(unknown)}; known: {sorted(known)}")
        # Runs written before there was a choice of family all used the plain one, and before smallest_side
        # was a setting, the family's legacy stage plan: their weights have that shape.
        arch = d.get("arch", "plain")
        legacy = {"smallest_side": ARCHS[arch].legacy_smallest} if arch in ARCHS else {}
        return cls(**{"arch": "plain", **legacy, **d, "image_shape": tuple(d.get("image_shape", (1, 28, 28)))})
