"""Run directories: one per run, holding the resolved config, metrics, events, checkpoints, plots.

RUN_DIR/config.json          {"kind": "ppo", "config": {...}, "versions": {...}} (the resolved config,
                             and the versions of Python and the packages whose numerics it ran on)
RUN_DIR/metrics.jsonl        one row per iteration: {"step": env steps, "iteration": ..., ...}
RUN_DIR/tb/                  TensorBoard events
RUN_DIR/checkpoints/last.pt  the latest checkpoint (written atomically)
    RUN_DIR/preferences.sqlite   segments, queries and answers of a preference run
RUN_DIR/plots/, RUN_DIR/videos/
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from prefrl.cli.logger import JSONLLogger, Logger, MultiLogger, TensorBoardLogger, read_metrics

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoints/last.pt"
PREFERENCES_FILE = "preferences.sqlite"
TENSORBOARD_DIR = "tb"
RUN_FORMAT_VERSION = 1
VERSIONED_PACKAGES = (
    "prefrl", "torch", "numpy", "gymnasium", "mujoco", "ale-py", "transformers", "peft", "accelerate",
    "deepspeed",
)  # fmt: skip
"""Packages whose versions a run records (those installed): a run's figures depend on their numerics."""


def env_file_name(env_id: str) -> str:
    """An env id as a file-name part: ``ALE/Pong-v5`` -> ``ALE_Pong-v5``, ``mypkg.envs:Task-v0`` ->
    ``mypkg.envs_Task-v0``."""
    return env_id.replace("/", "_").replace(":", "_")


def default_run_dir(kind: str, env_id: str, seed: int, root: Path = Path("runs")) -> Path:
    """runs/{kind}-{env id}-s{seed}-{date-time}"""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / f"{kind}-{env_file_name(env_id)}-s{seed}-{stamp}"


def create_run_dir(path: Path, kind: str, config: Any, defaults: str | None = None) -> Path:
    """Make a new run directory and write its resolved config (and ``defaults``: where the values
    the flags started from came from); refuses a non-empty directory."""
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise ValueError(
            f"{path} already exists and is not empty: pass --resume {path} to continue that run, "
            "or another --run-dir"
        )
    path.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": RUN_FORMAT_VERSION,
        "kind": kind,
        "config": dataclasses.asdict(config),
        "versions": package_versions(),
    }
    if defaults is not None:
        payload["defaults"] = defaults
    (path / CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n")
    return path


def package_versions() -> dict[str, str]:
    """{"python": ..., package: version} for the installed ones of :data:`VERSIONED_PACKAGES`."""
    import platform
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def discard_failed_start(path: Path) -> None:
    """Remove what a run that failed before its first iteration wrote (its config, empty logs, a
    store without answers: a human run's first iteration only enqueues), so the same --run-dir can
    be used again; keeps the directory itself when it holds anything else."""
    import shutil

    path = Path(path)
    store_files = [PREFERENCES_FILE + suffix for suffix in ("", "-wal", "-shm")]
    for name in (CONFIG_FILE, METRICS_FILE, TENSORBOARD_DIR, "checkpoints", *store_files, "clips"):
        target = path / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()


def read_run_config(path: Path, kind: str | None = None) -> dict[str, Any]:
    """The saved config dict of a run directory, with clear errors for anything else."""
    return read_run(path, kind)[1]


def read_run(path: Path, kind: str | None = None) -> tuple[str, dict[str, Any]]:
    """(kind, saved config dict) of a run directory; ``kind`` given: it must match."""
    path = Path(path)
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise ValueError(
            f"{path} is not a prefrl run directory (no {CONFIG_FILE}): pass a directory that "
            "`prefrl ppo` created"
        )
    try:
        payload = json.loads(config_file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{config_file} is not valid JSON ({exc}): the run directory is damaged") from None
    if kind is not None and payload.get("kind") != kind:
        raise ValueError(f"{path} is a {payload.get('kind')!r} run, not a {kind!r} run")
    return str(payload["kind"]), payload["config"]


def open_run_logger(path: Path, resume_step: int | None = None) -> Logger:
    """JSONL + TensorBoard sinks. On resume, metric rows after ``resume_step`` (logged after the last
    checkpoint by the run that was killed) are dropped, so the resumed run appends without gaps or
    duplicates."""
    path = Path(path)
    metrics_file = path / METRICS_FILE
    if resume_step is not None and metrics_file.exists():
        rows = [row for row in read_metrics(metrics_file) if row["step"] <= resume_step]
        tmp = metrics_file.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
        tmp.replace(metrics_file)
    purge = None if resume_step is None else resume_step + 1
    return MultiLogger([JSONLLogger(metrics_file), TensorBoardLogger(path / TENSORBOARD_DIR, purge)])
