"""Checkpoint files: written atomically, stamped with a format version, loaded with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FORMAT_VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` plus the format version to ``path`` via a temp file and an atomic rename, so
    a crash mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format_version": CHECKPOINT_FORMAT_VERSION, **state}, tmp)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"no checkpoint at {path}: the run stopped before its first checkpoint; start a new run"
        )
    state = torch.load(path, map_location=map_location, weights_only=False)
    version = state.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {version}, this prefrl reads {CHECKPOINT_FORMAT_VERSION}: "
            "use the prefrl version that wrote it"
        )
    return state
