"""The one training loop of the application. Every trainer of the library (PPO, the preference loop,
SFT, the LM reward model, LM PPO) meets :class:`Trainer`; :func:`run_loop` drives it: one
``train_iteration`` after another, each iteration's metrics logged once, a checkpoint when due and at
the end, the evaluation at the end, a progress bar, and a clean stop on Ctrl-C / SIGTERM that saves a
checkpoint after the current iteration. Several processes (data parallelism) stop together: each
process's request goes through ``agree`` (a collective: stop when any process was asked to), then
every process takes part in the checkpoint, since a sharded one needs all of them."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from prefrl.checkpoint import save_checkpoint
from prefrl.cli.logger import Logger, NullLogger


class Trainer(Protocol):
    """What the loop needs of a trainer; the library's trainers meet it without importing it."""

    @property
    def done(self) -> bool: ...

    @property
    def global_step(self) -> int: ...

    def train_iteration(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


Agreement = Callable[[bool], bool]
"""This process's stop request -> whether every process stops now (the same answer on all)."""


@dataclass(frozen=True)
class Bar:
    """What the progress bar shows: ``total`` of ``unit`` (the trainer's ``global_step``), and
    ``metric_key`` of the last metrics as ``metric_name`` with ``digits`` decimals."""

    console: Console
    total: int
    description: str
    metric_key: str = "env/return_window"
    metric_name: str = "return"
    unit: str = "steps"
    digits: int = 1


@dataclass
class Checkpoints:
    """Where and how often the loop checkpoints. ``every_steps``: a checkpoint each time
    ``global_step`` passes a multiple of it (and at the end, and on a stop). ``state``: the checkpoint's
    content (default: the trainer's ``state_dict``). ``write``: this process writes the file (the main
    one); ``collective``: building the state needs every process (a sharded model), so the others
    build it too and drop it."""

    path: Path
    every_steps: int
    state: Callable[[], dict[str, Any]] | None = None
    write: bool = True
    collective: bool = False

    def due(self, step_before: int, trainer: Trainer) -> bool:
        """Whether the last iteration passed a multiple of ``every_steps``."""
        return trainer.global_step // self.every_steps > step_before // self.every_steps

    def save(self, trainer: Trainer) -> None:
        if not (self.write or self.collective):
            return
        state = self.state() if self.state is not None else trainer.state_dict()
        if self.write:
            save_checkpoint(self.path, state)


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


class StopRequested:
    """Set by SIGINT/SIGTERM; a second signal interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def run_loop(
    trainer: Trainer,
    logger: Logger | None = None,
    checkpoints: Checkpoints | None = None,
    bar: Bar | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    agree: Agreement | None = None,
) -> dict[str, float] | None:
    """Train ``trainer`` to the end (or to a stop signal); returns the last iteration's metrics (with
    ``evaluate``'s, run once at the end), None if stopped (after a checkpoint). Without ``bar``: no
    output (the other processes of a data-parallel run)."""
    logger = logger or NullLogger()
    metrics: dict[str, float] = {}
    with stop_signals() as stop, _display(bar, trainer.global_step) as show:
        while not trainer.done:
            before = trainer.global_step
            metrics = trainer.train_iteration()
            if trainer.done and evaluate is not None:
                metrics.update(evaluate())
            logger.log(metrics, trainer.global_step)
            show(trainer.global_step, metrics)
            stopping = stop.requested if agree is None else agree(stop.requested)
            if checkpoints is not None and (stopping or trainer.done or checkpoints.due(before, trainer)):
                checkpoints.save(trainer)
            if stopping:
                return None
    return metrics


Show = Callable[[int, dict[str, float]], None]


@contextlib.contextmanager
def _display(bar: Bar | None, start_step: int) -> Iterator[Show]:
    """A rich progress bar updated after each iteration (steps/s since the start, the bar's metric,
    a warning when the hacking monitor fires); nothing without ``bar``."""
    if bar is None:
        yield lambda step, metrics: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[sps]:>7.0f} " + bar.unit + "/s"),
        TextColumn(bar.metric_name + " {task.fields[ret]}"),
        TextColumn("[bold red]{task.fields[warn]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=bar.console,
    )
    start_time = time.perf_counter()

    def show(step: int, metrics: dict[str, float]) -> None:
        rate = (step - start_step) / (time.perf_counter() - start_time)
        value = metrics.get(bar.metric_key)
        progress.update(
            task,
            completed=step,
            sps=rate,
            ret="-" if value is None else f"{value:.{bar.digits}f}",
            warn="reward hacking?" if metrics.get("monitor/hacking") else "",
        )

    with progress:
        task = progress.add_task(
            bar.description, total=bar.total, completed=start_step, sps=0.0, ret="-", warn=""
        )
        yield show
