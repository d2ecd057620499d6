"""The CLI's training loop: a rich progress bar, and a clean stop on Ctrl-C / SIGTERM that saves a
checkpoint after the current iteration. Several processes (data parallelism) stop together: each
process's request goes through ``agree`` (a collective: stop when any process was asked to), then
every process saves, since a sharded checkpoint needs all of them."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
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


Agreement = Callable[[bool], bool]
"""This process's stop request -> whether every process stops now (the same answer on all)."""


@contextlib.contextmanager
def stop_signals() -> Iterator[StopRequested]:
    """SIGINT and SIGTERM set the yielded flag (a second one interrupts) while inside."""
    stop = StopRequested()
    old_handlers = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)


def _stopping(trainer: IterativeTrainer, stop: StopRequested, agree: Agreement | None) -> bool:
    """Whether to stop after this iteration (then the checkpoint is saved)."""
    if not (stop.requested if agree is None else agree(stop.requested)):
        return False
    trainer.save()
    return True


def train_quietly(trainer: IterativeTrainer, agree: Agreement | None = None) -> dict[str, float] | None:
    """:func:`train_with_progress` without the bar (the other processes of a data-parallel run)."""
    metrics: dict[str, float] = {}
    with stop_signals() as stop:
        while not trainer.done:
            metrics = trainer.train_iteration()
            if _stopping(trainer, stop, agree):
                return None
    return metrics


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
    agree: Agreement | None = None,
) -> dict[str, float] | None:
    """Run ``trainer`` to the end (or to a stop signal); returns the last metrics, None if stopped.
    The bar shows ``metric_key`` of the last metrics as ``metric_name`` (``digits`` decimals), and
    ``unit``/s. ``agree``: the stop decision shared by several processes (see the module)."""
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
    with stop_signals() as stop, progress:
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
            if _stopping(trainer, stop, agree):
                return None
    return metrics
