"""Metrics sinks. Trainers return metric dicts and log them once through a :class:`Logger`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

Metrics = Mapping[str, float]


class Logger(Protocol):
    """Receives namespaced metrics (``env/``, ``ppo/``, ...) at an env-step count."""

    def log(self, metrics: Metrics, step: int) -> None: ...

    def close(self) -> None: ...


class JSONLLogger:
    """Appends one JSON object per call to a file: ``{"step": ..., **metrics}``, flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def log(self, metrics: Metrics, step: int) -> None:
        row: dict[str, Any] = {"step": int(step)}
        row.update({k: _json_number(v) for k, v in metrics.items()})
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardLogger:
    """Scalars to TensorBoard event files in ``log_dir``; ``purge_step`` drops stale events on resume."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def log(self, metrics: Metrics, step: int) -> None:
        for key, value in metrics.items():
            if math.isfinite(value):
                self._writer.add_scalar(key, value, global_step=step)

    def close(self) -> None:
        self._writer.close()


class MultiLogger:
    """Fans out to several sinks."""

    def __init__(self, sinks: Sequence[Logger]) -> None:
        self.sinks = list(sinks)

    def log(self, metrics: Metrics, step: int) -> None:
        for sink in self.sinks:
            sink.log(metrics, step)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class NullLogger:
    def log(self, metrics: Metrics, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def _json_number(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All rows of a ``metrics.jsonl`` file (a torn last line from a crash is skipped)."""
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows
