"""Trainer state as one safetensors file: optimiser tensors, RNG states, weights and the exact position.

No pickle: tensors are stored by name (``opt.state.<param_index>.<key>``, ``rng.<name>``, ``model.<name>``)
and everything else (position, optimiser hyper-parameters, ``extra``) as JSON strings in the metadata.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from latentspace.models.io import require_finite
from latentspace.utils.files import read_safetensors, save_safetensors

FORMAT = "latentspace.trainer_state/1"
_OPT, _RNG, _MODEL = "opt.state.", "rng.", "model."


@dataclass(frozen=True)
class TrainerState:
    """Where training stands: ``epoch`` epochs completed plus ``step_in_epoch`` steps of the next one.

    generator_states: torch.Generator.get_state() tensors (uint8) by name. model_state: the weights at
    this position (a state_dict), or None when they were not stored. extra: JSON-able loop bookkeeping.
    """

    epoch: int
    step_in_epoch: int
    global_step: int
    scheduler_step: int
    generator_states: dict[str, torch.Tensor] = field(default_factory=dict)
    model_state: dict[str, torch.Tensor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def save_trainer_state(
    path: str | Path,
    optimizer: torch.optim.Optimizer,
    scheduler_step: int,
    epoch: int,
    step_in_epoch: int,
    global_step: int,
    generator_states: dict[str, torch.Tensor],
    extra: dict[str, Any],
    model_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write the trainer state atomically to ``path`` (a .safetensors file)."""
    opt = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for index, state in opt["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_OPT}{index}.{key}"] = _cpu_copy(value)
            else:
                plain_state.setdefault(str(index), {})[key] = value
    for name, state in generator_states.items():
        tensors[f"{_RNG}{name}"] = _cpu_copy(state)
    for name, value in (model_state or {}).items():
        tensors[f"{_MODEL}{name}"] = _cpu_copy(value)
    metadata = {
        "format": FORMAT,
        "epoch": str(int(epoch)),
        "step_in_epoch": str(int(step_in_epoch)),
        "global_step": str(int(global_step)),
        "scheduler_step": str(int(scheduler_step)),
        "param_groups": json.dumps(opt["param_groups"]),
        "opt_plain_state": json.dumps(plain_state),
        "extra": json.dumps(extra),
    }
    return save_safetensors(path, tensors, metadata)


def load_trainer_state(path: str | Path, optimizer: torch.optim.Optimizer | None = None) -> TrainerState:
    """Read a trainer state; when ``optimizer`` is given its state is restored in place.

    A missing, truncated or foreign file raises ValueError naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: trainer state not found (the run has no checkpoint to resume from)")
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != FORMAT:
        found = metadata.get("format")
        raise ValueError(f"{path}: not a latentspace trainer state (format {found!r}, expected {FORMAT!r})")
    try:
        position = {k: int(metadata[k]) for k in ("epoch", "step_in_epoch", "global_step", "scheduler_step")}
        param_groups = json.loads(metadata["param_groups"])
        plain_state = json.loads(metadata["opt_plain_state"])
        extra = json.loads(metadata["extra"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path}: damaged trainer state metadata ({_first_line(e)})") from None
    require_finite(tensors, path)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(_optimizer_state(path, tensors, plain_state, param_groups))
        except ValueError as e:
            raise ValueError(f"{path}: optimiser state does not fit this model ({_first_line(e)})") from None
        _match_layouts(optimizer)
    return TrainerState(
        **position,
        generator_states=_strip(tensors, _RNG),
        model_state=_strip(tensors, _MODEL) or None,
        extra=extra,
    )


def _optimizer_state(path: Path, tensors: dict, plain_state: dict, param_groups: list) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in _strip(tensors, _OPT).items():
        index, _, key = name.partition(".")
        state.setdefault(int(index), {})[key] = value
    for index, values in plain_state.items():
        state.setdefault(int(index), {}).update(values)
    for group in param_groups:
        # JSON turned tuples (AdamW betas) into lists; give them back their type.
        for key, value in group.items():
            if key != "params" and isinstance(value, list):
                group[key] = tuple(value)
    if not param_groups:
        raise ValueError(f"{path}: trainer state holds no optimiser parameter groups")
    return {"state": state, "param_groups": param_groups}


def _match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Each moment in its parameter's memory layout. The file holds them in the usual one, and the fused CPU
    AdamW walks parameter and moments in storage order: a channels-last weight beside moments read back as
    stored would be updated with other elements' moments."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    state[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _cpu_copy(t: torch.Tensor) -> torch.Tensor:
    # A copy: safetensors refuses tensors that share storage (tied weights) and views.
    return t.detach().to("cpu", copy=True).contiguous()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
