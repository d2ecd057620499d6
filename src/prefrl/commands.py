"""What the CLI's training commands do once their input is parsed and checked."""

from __future__ import annotations

import math
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from rich.console import Console

from prefrl.checkpoint import load_checkpoint
from prefrl.envs.backflip import HOPPER_OBS_DIM
from prefrl.envs.make import make_vec_env
from prefrl.ppo.config import PPOConfig
from prefrl.ppo.trainer import PPOTrainer
from prefrl.preferences.store import PreferenceStore
from prefrl.progress import train_with_progress
from prefrl.rlhp import RLHPConfig, RLHPTrainer
from prefrl.runs import (
    CHECKPOINT_FILE,
    PREFERENCES_FILE,
    create_run_dir,
    default_run_dir,
    open_run_logger,
)
from prefrl.validation import config_from_dict


def start_ppo(config: PPOConfig, run_dir: Path | None, resume: Path | None) -> tuple[PPOTrainer, Path]:
    """Check everything, then create (or reopen) the run directory and build the trainer."""
    check_device(config.device)
    envs = make_vec_env(config.env_id, config.num_envs, config.vectorization, **config.env_kwargs)
    try:
        state = None
        if resume is not None:
            state = load_checkpoint(resume / CHECKPOINT_FILE)
            if config_from_dict(PPOConfig, state["config"]) != config:
                raise ValueError(
                    f"{resume / CHECKPOINT_FILE} was written with another config than "
                    f"{resume / 'config.json'}: the run directory is inconsistent; start a new run"
                )
            run_dir = resume
            logger = open_run_logger(run_dir, resume_step=int(state["global_step"]))
        else:
            run_dir = create_run_dir(
                run_dir or default_run_dir("ppo", config.env_id, config.seed), "ppo", config
            )
            logger = open_run_logger(run_dir)
    except BaseException:
        envs.close()
        raise
    trainer = PPOTrainer(config, envs, logger, checkpoint_path=run_dir / CHECKPOINT_FILE)
    if state is not None:
        trainer.load_state_dict(state)
    return trainer, run_dir


def check_device(device: str) -> None:
    """A ValueError with the fix for a device string torch cannot parse or this machine lacks."""
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine; use --device cpu")


def train_run(trainer: PPOTrainer, run_dir: Path, console: Console) -> dict[str, float] | None:
    """Train with a progress bar; on a stop signal, say how to resume. Closes the trainer's logger."""
    config = trainer.config
    try:
        if trainer.done:
            console.print(f"{run_dir} already finished ({trainer.global_step} steps)")
            return {}
        total = config.num_iterations * config.batch_size
        metrics = train_with_progress(trainer, total, console, config.env_id)
    finally:
        trainer.logger.close()
        trainer.envs.close()
    if metrics is None:
        console.print(
            f"stopped at step {trainer.global_step}, checkpoint saved: continue with "
            f"[bold]prefrl ppo --resume {run_dir}[/bold]"
        )
    return metrics


def run_ppo(
    config: PPOConfig, run_dir: Path | None, resume: Path | None, threads: int, console: Console
) -> int:
    from prefrl.plotting import plot_run

    torch.set_num_threads(threads)
    trainer, run_dir = start_ppo(config, run_dir, resume)
    console.print(f"run directory: {run_dir}")
    start = time.perf_counter()
    metrics = train_run(trainer, run_dir, console)
    if metrics is None:
        return 130
    plot = plot_run(run_dir)
    if "eval/return_mean" in metrics:
        console.print(
            f"deterministic evaluation: return {metrics['eval/return_mean']:.1f} "
            f"+- {metrics['eval/return_std']:.1f} over {config.num_eval_episodes} episodes"
        )
    console.print(f"{trainer.global_step} steps in {time.perf_counter() - start:.1f} s; plot: {plot}")
    console.print(f"video: prefrl video {run_dir}   TensorBoard: tensorboard --logdir {run_dir}")
    return 0


def check_segment_length(config: RLHPConfig) -> None:
    """A ValueError with the fix when segments cannot fit in the env's longest episode."""
    from prefrl.envs.make import resolve_spec

    max_steps = resolve_spec(config.ppo.env_id).max_episode_steps
    if config.segment_length is not None and max_steps and config.segment_length > max_steps:
        raise ValueError(
            f"--segment-length {config.segment_length} is longer than {config.ppo.env_id}'s episodes "
            f"({max_steps} steps at most): pass at most {max_steps}"
        )


TRUE_REWARD_PROBE_STEPS = 50
"""Random-action steps taken to check that an env reports a true reward for the synthetic labeller."""


def check_true_reward(config: RLHPConfig) -> None:
    """A ValueError with the fix when the env's reward is not a finite number: the synthetic labeller
    answers from it (a random policy, a few steps, before anything is written)."""
    kwargs = {k: v for k, v in config.ppo.env_kwargs.items() if k != "proxy_reward"}  # a wrapper
    env = gym.make(config.ppo.env_id, disable_env_checker=True, **kwargs)
    try:
        env.reset(seed=config.ppo.seed)
        env.action_space.seed(config.ppo.seed)
        for step in range(TRUE_REWARD_PROBE_STEPS):
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            if (
                isinstance(reward, bool)
                or not isinstance(reward, int | float | np.number)
                or not (math.isfinite(float(reward)))
            ):
                raise ValueError(
                    f"{config.ppo.env_id} returned reward {reward!r} at step {step}, but the synthetic "
                    "labeller answers from the env's true reward: use an env that reports a finite "
                    "numeric reward (or have people label: --labeller human)"
                )
            if terminated or truncated:
                env.reset()
    finally:
        env.close()


def start_rlhp(
    config: RLHPConfig, run_dir: Path | None, resume: Path | None, labeller_name: str = "synthetic"
) -> tuple[RLHPTrainer, Path, PreferenceStore]:
    """Check everything, then create (or reopen) the run directory and build the loop."""
    from prefrl.preferences.judges import FlipJudge
    from prefrl.preferences.labellers import Labeller, SyntheticLabeller

    check_device(config.ppo.device)
    ppo = config.ppo
    check_segment_length(config)
    check_true_reward(config)
    if resume is not None:
        check_same_labeller(resume / PREFERENCES_FILE, labeller_name)
    envs = make_vec_env(ppo.env_id, ppo.num_envs, ppo.vectorization, **ppo.env_kwargs)
    if labeller_name == "flip-judge" and envs.single_observation_space.shape != (HOPPER_OBS_DIM,):
        envs.close()
        raise ValueError(
            f"--labeller flip-judge watches a Hopper, but {ppo.env_id} has observations of shape "
            f"{envs.single_observation_space.shape}: use --env-id prefrl/HopperBackflip-v0"
        )
    try:
        state = None
        if resume is not None:
            state = load_checkpoint(resume / CHECKPOINT_FILE)
            if "rlhp" not in state or config_from_dict(RLHPConfig, state["rlhp"]["config"]) != config:
                raise ValueError(
                    f"{resume / CHECKPOINT_FILE} does not match {resume / 'config.json'}: the run "
                    "directory is inconsistent; start a new run"
                )
            run_dir = resume
            logger = open_run_logger(run_dir, resume_step=int(state["global_step"]))
        else:
            default = default_run_dir("rlhp", config.ppo.env_id, config.ppo.seed)
            run_dir = create_run_dir(run_dir or default, "rlhp", config)
            logger = open_run_logger(run_dir)
    except BaseException:
        envs.close()
        raise
    store = PreferenceStore(run_dir / PREFERENCES_FILE, env_id=ppo.env_id)
    labeller: Labeller = (
        FlipJudge()
        if labeller_name == "flip-judge"
        else SyntheticLabeller(config.teacher, np.random.default_rng(config.ppo.seed + 2))
    )
    trainer = RLHPTrainer(config, labeller, store, envs, logger, run_dir / CHECKPOINT_FILE)
    if state is not None:
        trainer.load_state_dict(state)
    return trainer, run_dir, store


def check_same_labeller(path: Path, name: str) -> None:
    """A ValueError with the fix when a resumed run's answers (in the store at ``path``) came from
    another synthetic labeller."""
    if not path.exists():
        return
    store = PreferenceStore(path)
    try:
        comparisons = store.comparisons()
    finally:
        store.close()
    if comparisons and comparisons[-1].labeller != name:
        raise ValueError(
            f"this run's labels came from {comparisons[-1].labeller!r}, not {name!r}: "
            f"resume with --labeller {comparisons[-1].labeller}"
        )


def resume_flags(labeller: str) -> str:
    """Flags that a resumed run needs besides --resume (the labeller is no part of the config)."""
    return "" if labeller == "synthetic" else f" --labeller {labeller}"


def run_rlhp(
    config: RLHPConfig,
    run_dir: Path | None,
    resume: Path | None,
    threads: int,
    console: Console,
    labeller: str = "synthetic",
) -> int:
    """``prefrl rlhp``: the preference loop with a synthetic labeller (or the flip judge)."""
    from prefrl.plotting import plot_run

    torch.set_num_threads(threads)
    trainer, run_dir, store = start_rlhp(config, run_dir, resume, labeller)
    console.print(f"run directory: {run_dir} (answers in {run_dir / PREFERENCES_FILE})")
    try:
        if trainer.done:
            console.print(f"{run_dir} already finished ({trainer.global_step} steps)")
            return 0
        total = config.ppo.num_iterations * config.ppo.batch_size
        metrics = train_with_progress(trainer, total, console, "rlhp")
    finally:
        trainer.logger.close()
        trainer.ppo.envs.close()
        store.close()
    if metrics is None:
        console.print(
            f"stopped at step {trainer.global_step}, checkpoint saved: continue with "
            f"[bold]prefrl rlhp --resume {run_dir}{resume_flags(labeller)}[/bold]"
        )
        return 130
    plot = plot_run(run_dir)
    console.print(
        f"true return (last 20 episodes) {metrics.get('env/return_window', float('nan')):.1f} with "
        f"{metrics.get('preferences/num_labels', 0):.0f} labels; plot: {plot}"
    )
    return 0
