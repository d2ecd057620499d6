"""How ``prefrl lm`` commands run: the devices they share a model over, their run directories,
checkpoints and progress bar around the one training loop, and the model they save."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from prefrl.checkpoint import load_checkpoint
from prefrl.cli.logger import Logger, NullLogger
from prefrl.cli.loop import Bar, Checkpoints, run_loop
from prefrl.cli.run_dir import CHECKPOINT_FILE, create_run_dir, open_run_logger
from prefrl.lm import distributed
from prefrl.lm.dpo import DPOTrainer
from prefrl.lm.ppo import LMPPOTrainer
from prefrl.lm.rm_training import RMTrainer
from prefrl.lm.sft import SFTTrainer

MODEL_DIR = "model"


@dataclass(frozen=True)
class Devices:
    """How several processes share the model, and the precision of its forward passes."""

    parallel: distributed.Parallel = "ddp"
    """With several processes (torchrun / accelerate launch): ddp replicates the model; fsdp (torch
    FSDP2) shards weights, gradients and optimizer state; zero1|zero2|zero3: DeepSpeed ZeRO's stages."""
    mixed_precision: distributed.MixedPrecision = "no"
    """bf16: forward passes under bfloat16 autocast (weights, optimizer, losses fp32); for GPUs."""
    grad_accum_steps: int = 1
    """SFT, reward model, DPO: each step's batch in this many parts, one forward and backward each:
    the same step in less memory (PPO's unit is its minibatch: lower --minibatch-size instead)."""


LMTrainer = SFTTrainer | RMTrainer | DPOTrainer | LMPPOTrainer


def lm_checkpoints(
    trainer: LMTrainer, path: Path, every: int, config: dict[str, Any], main: bool
) -> Checkpoints:
    """An LM run's checkpoints: every ``every`` steps (PPO: iterations), {"trainer", "global_step",
    "config"}; only the main process writes, and a sharded model's (or ZeRO's) state is gathered by
    every process."""
    every_steps = every * (trainer.config.batch_size if isinstance(trainer, LMPPOTrainer) else 1)
    return Checkpoints(
        path / CHECKPOINT_FILE,
        every_steps,
        state=lambda: {"trainer": trainer.state_dict(), "global_step": trainer.global_step, "config": config},
        write=main,
        collective=distributed.state_is_collective(trainer.model, trainer.optimizer),
    )


def make_accelerator() -> Any | None:
    """An ``accelerate.Accelerator`` when started by ``accelerate launch`` / ``torchrun`` with several
    processes (WORLD_SIZE > 1) or when a GPU is there (it places models and batches on it), else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not torch.cuda.is_available():
        return None
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())


def open_run(
    kind: str, command: Any, run_dir: Path | None, resume: Path | None, default: Path, main: bool = True
) -> tuple[Path, Logger, dict[str, Any] | None]:
    """Create the run directory (or reopen one to resume); (run_dir, logger, checkpoint state). Only
    the main process writes; the others get a NullLogger."""
    state = load_checkpoint(resume / CHECKPOINT_FILE) if resume is not None else None
    if not main:
        return resume or run_dir or default, NullLogger(), state
    if resume is not None and state is not None:
        return resume, open_run_logger(resume, resume_step=int(state["global_step"])), state
    run_dir = create_run_dir(run_dir or default, kind, command)
    return run_dir, open_run_logger(run_dir), None


def run_training(
    trainer: LMTrainer, run_dir: Path, logger: Logger, checkpoints: Checkpoints, bar: Bar, main: bool
) -> dict[str, float] | None:
    """The loop over an LM trainer; only the main process shows the bar (data parallelism)."""
    try:
        if trainer.done:
            bar.console.print(f"{run_dir} already finished")
            return {}
        agree = distributed.stop_agreement(trainer.accelerator)
        return run_loop(trainer, logger, checkpoints, bar if main else None, agree=agree)
    finally:
        logger.close()


def as_dict(command: Any) -> dict[str, Any]:
    return dataclasses.asdict(command)


def default_dir(kind: str, seed: int) -> Path:
    from prefrl.cli.run_dir import default_run_dir

    return default_run_dir(kind, "lm", seed)


def train_stage(
    name: str,
    cmd: Any,
    trainer: LMTrainer,
    run_dir: Path | None,
    resume: Path | None,
    console: Console,
    main: bool,
    progress: tuple[int, str, tuple[str, str], str],
) -> tuple[Path, int | None]:
    """What ``prefrl lm sft|rm|ppo|dpo`` share: open (or reopen) the run directory, restore the checkpoint,
    train with a progress bar of (total, label, (metric, short name), unit). Returns the run directory
    and the exit code to return now (stopped: 130; not the main process: 0), or None when the main
    process should save the model."""
    kind = f"lm-{name}"
    run_dir, logger, state = open_run(kind, cmd, run_dir, resume, default_dir(kind, cmd.config.seed), main)
    if state is not None:
        trainer.load_state_dict(state["trainer"])
    if main:
        _, world = distributed.rank_and_world(trainer.accelerator)
        shared = f" ({cmd.devices.parallel} over {world} processes)" if world > 1 else ""
        console.print(f"run directory: {run_dir}{shared}")
    checkpoints = lm_checkpoints(trainer, run_dir, cmd.checkpoint_every, as_dict(cmd), main)
    total, label, metric, unit = progress
    bar = Bar(console, total, label, metric[0], metric[1], unit, digits=2)
    if run_training(trainer, run_dir, logger, checkpoints, bar, main) is None:
        console.print(f"stopped; continue with [bold]prefrl lm {name} --resume {run_dir}[/bold]")
        return run_dir, 130
    return run_dir, None if main else 0


def whole_model(model: Any, run_dir: Path, fresh: Callable[[], Any], key: str = "model") -> Any:
    """The trained model to save: itself, or for a sharded one a ``fresh`` copy loaded with the
    weights in the run's last checkpoint (written at the last step, it holds the whole model)."""
    if not distributed.is_sharded(model):
        return model
    whole = fresh()
    whole.load_state_dict(load_checkpoint(run_dir / CHECKPOINT_FILE)["trainer"][key])
    return whole
