"""TrainConfig: every knob of a training run in one frozen, validated place (defaults tuned by experiment)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from latentspace.utils.device import PRECISIONS

# Cosine decay ends at this fraction of the peak learning rate.
FINAL_LR_FRACTION = 0.05


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser (AdamW), schedule (linear warm-up then cosine to lr * 0.05), KL warm-up.

    epochs: passes over the train split; the schedule spans all of them. kl_warmup_epochs: the KL
    weight rises linearly 0 -> 1 over this many epochs (by step; 0 = always 1). grad_clip: global
    gradient norm limit (0 = off). eval_batch_size: images per batch in evaluation. probe_size: test
    images whose posterior means are stored after every epoch (0 = none). threads: CPU threads for
    torch (None = torch's default; set by the entry point, never by the loop). hflip: mirror a random half of
    every batch left-right (augmentation for images whose mirror image is as real as they are: faces, photos;
    not digits or text). early_stop: end training once the test ELBO has not improved for this many epochs
    (0 = off); the weights are those of the last epoch trained. precision: 'auto' (bf16 autocast where the device
    runs bf16 natively, see utils.device.train_autocast_dtype), 'fp32' or 'bf16'; weights stay fp32.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 4e-3
    weight_decay: float = 0.0
    warmup_steps: int = 50
    kl_warmup_epochs: float = 0.0
    grad_clip: float = 5.0
    seed: int = 0
    eval_batch_size: int = 1000
    probe_size: int = 500
    compile: bool = False
    threads: int | None = None
    hflip: bool = False
    early_stop: int = 0
    minutes: float | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        _require_int(self, "epochs", minimum=1)
        _require_int(self, "batch_size", minimum=1)
        _require_int(self, "warmup_steps", minimum=0)
        _require_int(self, "seed", minimum=0)
        _require_int(self, "eval_batch_size", minimum=1)
        _require_int(self, "probe_size", minimum=0)
        _require_number(self, "lr", positive=True)
        _require_number(self, "weight_decay")
        _require_number(self, "kl_warmup_epochs")
        _require_number(self, "grad_clip")
        for name in ("compile", "hflip"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TrainConfig.{name} must be true or false, got {getattr(self, name)!r}")
        _require_int(self, "early_stop", minimum=0)
        if self.minutes is not None:
            _require_number(self, "minutes", positive=True)
        if self.threads is not None:
            _require_int(self, "threads", minimum=1)
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of to_dict; unknown keys are an error (a typo must not silently become a default)."""
        if not isinstance(d, dict):
            raise ValueError(f"train config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"TrainConfig has no field(s) {', '.join(map(repr, unknown))}; "
                             f"fields: {', '.join(sorted(known))}")
        return cls(**d)

    def with_changes(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)


def _require_int(cfg: TrainConfig, name: str, minimum: int) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"TrainConfig.{name} must be an integer >= {minimum}, got {value!r}")


def _require_number(cfg: TrainConfig, name: str, positive: bool = False) -> None:
    value = getattr(cfg, name)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value  # NaN != NaN
    if not ok or value < 0 or (positive and value == 0) or value == float("inf"):
        allowed = "a finite number > 0" if positive else "a finite number >= 0"
        raise ValueError(f"TrainConfig.{name} must be {allowed}, got {value!r}")
