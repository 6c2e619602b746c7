"""The encoder/decoder families, registered by name in ARCHS: the table that ``--arch``'s choices and help, and
ModelConfig's validation, read."""
from __future__ import annotations

from latentspace.models.nets.base import Arch
from latentspace.models.nets.plain import PLAIN
from latentspace.models.nets.resnet import RESNET

ARCHS: dict[str, Arch] = {a.name: a for a in (PLAIN, RESNET)}

def default_arch(side: int) -> str:
    """The family a run gets when none is named, chosen by quality per CPU-minute at the budgets the CLI's
    defaults and the demo train for (benchmarks/picture_quality.py; README, "Choosing the network"). On 2 CPU
    cores 'plain' wins at every side we measured (28, 64): 'resnet' reaches a slightly higher PSNR per epoch
    but costs 2.5x the time per epoch at 64 px, so within the same minutes it falls behind."""
    return PLAIN.name


def arch_help() -> str:
    return "; ".join(f"{name}: {a.help}" for name, a in ARCHS.items())


__all__ = ["ARCHS", "Arch", "arch_help", "default_arch"]
