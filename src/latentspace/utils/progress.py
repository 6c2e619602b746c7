"""Progress reporting without printing: library code calls a Progress, the CLI decides how it looks."""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int, description: str) -> None: ...
    def advance(self, n: int = 1, **info: float | str) -> None: ...
    def close(self) -> None: ...


class NullProgress:
    """The default: reports nothing."""

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, n: int = 1, **info: float | str) -> None:
        pass

    def close(self) -> None:
        pass


NULL_PROGRESS = NullProgress()
