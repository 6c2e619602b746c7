"""Terminal helpers shared by the subcommands: a rich progress bar behind the library's Progress protocol."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


class RichProgress:
    """Implements utils.progress.Progress with a rich bar; keyword info is shown after the bar."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._task = None

    def start(self, total: int, description: str) -> None:
        self.close()
        self._bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=console, transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, info="")

    def advance(self, n: int = 1, **info: float | str) -> None:
        if self._bar is None:
            return
        text = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items())
        self._bar.update(self._task, advance=n, **({"info": text} if info else {}))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
