"""The CLI's training loop: a rich progress bar, and a clean stop on Ctrl-C / SIGTERM that saves a
checkpoint after the current iteration."""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class IterativeTrainer(Protocol):
    @property
    def global_step(self) -> int: ...

    @property
    def done(self) -> bool: ...

    def train_iteration(self) -> dict[str, float]: ...

    def save(self) -> None: ...


class StopRequested:
    """Set by SIGINT/SIGTERM; a second signal interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def train_with_progress(
    trainer: IterativeTrainer,
    total_steps: int,
    console: Console,
    description: str,
    metric_key: str = "env/return_window",
    metric_name: str = "return",
    unit: str = "steps",
    digits: int = 1,
) -> dict[str, float] | None:
    """Run ``trainer`` to the end (or to a stop signal); returns the last metrics, None if stopped.
    The bar shows ``metric_key`` of the last metrics as ``metric_name`` (``digits`` decimals), and
    ``unit``/s."""
    stop = StopRequested()
    old_handlers = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[sps]:>7.0f} " + unit + "/s"),
        TextColumn(metric_name + " {task.fields[ret]}"),
        TextColumn("[bold red]{task.fields[warn]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    metrics: dict[str, float] = {}
    start_step, start = trainer.global_step, time.perf_counter()
    try:
        with progress:
            task = progress.add_task(
                description, total=total_steps, completed=trainer.global_step, sps=0.0, ret="-", warn=""
            )
            while not trainer.done:
                metrics = trainer.train_iteration()
                rate = (trainer.global_step - start_step) / (time.perf_counter() - start)
                ret = metrics.get(metric_key)
                progress.update(
                    task,
                    completed=trainer.global_step,
                    sps=rate,
                    ret="-" if ret is None else f"{ret:.{digits}f}",
                    warn="reward hacking?" if metrics.get("monitor/hacking") else "",
                )
                if stop.requested:
                    trainer.save()
                    return None
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    return metrics
