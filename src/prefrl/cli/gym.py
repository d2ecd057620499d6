"""``prefrl ppo``, ``prefrl rlhp`` and ``prefrl label``: what they do once their input is parsed and
checked. Each builds a library trainer and hands it to the one loop (``cli.loop.run_loop``), which
logs, checkpoints, shows progress and evaluates."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from rich.console import Console

from prefrl.checkpoint import load_checkpoint
from prefrl.cli.checks import (
    check_device,
    check_labelling_installed,
    check_same_labeller,
    check_segment_length,
    probe_env,
)
from prefrl.cli.label import report_answers, start_labelling
from prefrl.cli.logger import Logger
from prefrl.cli.loop import Bar, Checkpoints, run_loop
from prefrl.cli.run_dir import (
    CHECKPOINT_FILE,
    PREFERENCES_FILE,
    create_run_dir,
    default_run_dir,
    discard_failed_start,
    open_run_logger,
)
from prefrl.envs.atari import is_atari
from prefrl.envs.backflip import HOPPER_OBS_DIM
from prefrl.envs.make import make_vec_env
from prefrl.ppo.config import PPOConfig
from prefrl.ppo.policies import check_policy_inputs
from prefrl.ppo.trainer import PPOTrainer
from prefrl.preferences.labellers import check_labeller
from prefrl.preferences.store import PreferenceStore
from prefrl.reward_model.ensemble import check_reward_inputs
from prefrl.rlhp import RLHPConfig, RLHPTrainer
from prefrl.rlhp.presets import rlhp_preset
from prefrl.validation import config_from_dict

if TYPE_CHECKING:
    from prefrl.labelling.server import BackgroundServer
    from prefrl.preferences.labellers import Labeller


def start_ppo(
    config: PPOConfig, run_dir: Path | None, resume: Path | None, defaults: str | None = None
) -> tuple[PPOTrainer, Path, Logger]:
    """Check everything, then create (or reopen) the run directory and build the trainer;
    ``defaults`` (where the flags' starting values came from) goes into config.json."""
    check_device(config.device)
    check_device(config.acting_device, "--rollout-device")
    probe_env(config)
    envs = make_vec_env(config.env_id, config.num_envs, config.vectorization, **config.env_kwargs)
    try:
        spaces = (envs.single_observation_space, envs.single_action_space)
        check_policy_inputs(*spaces, config.normalize_obs, config.env_id)  # before anything is written
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
                run_dir or default_run_dir("ppo", config.env_id, config.seed), "ppo", config, defaults
            )
            logger = open_run_logger(run_dir)
    except BaseException:
        envs.close()
        raise
    trainer = PPOTrainer(config, envs)
    if state is not None:
        trainer.load_state_dict(state)
    return trainer, run_dir, logger


def defaults_source(env_id: str, resume: Path | None) -> str | None:
    """Where a new run's PPO defaults came from (a preset, or chosen from the env's spaces), for
    config.json and the first line of output; None for a resumed run (its config is kept)."""
    from prefrl.ppo.presets import preset_and_source

    return None if resume is not None else preset_and_source(env_id)[1]


def train_gym(
    trainer: PPOTrainer | RLHPTrainer, run_dir: Path, logger: Logger, console: Console, description: str
) -> dict[str, float] | None:
    """The loop over a gym trainer (PPO, or the preference loop): log, checkpoint every
    ``checkpoint_every`` iterations, evaluate the deterministic policy at the end, a progress bar.
    The last metrics; None if stopped (checkpoint saved)."""
    ppo = trainer if isinstance(trainer, PPOTrainer) else trainer.ppo
    config = ppo.config
    checkpoints = Checkpoints(run_dir / CHECKPOINT_FILE, config.checkpoint_every * config.batch_size)
    bar = Bar(console, config.num_iterations * config.batch_size, description)
    evaluate = None
    if config.num_eval_episodes > 0:  # a task whose env paid no reward has no return to evaluate
        seen = lambda: getattr(trainer, "true_reward_seen", True)  # noqa: E731
        evaluate = lambda: ppo.evaluate(config.num_eval_episodes) if seen() else {}  # noqa: E731
    return run_loop(trainer, logger, checkpoints, bar, evaluate)


def train_run(
    trainer: PPOTrainer, run_dir: Path, logger: Logger, console: Console
) -> dict[str, float] | None:
    """Train with a progress bar; on a stop signal, say how to resume. Closes the logger and envs."""
    try:
        if trainer.done:
            console.print(f"{run_dir} already finished ({trainer.global_step} steps)")
            return {}
        metrics = train_gym(trainer, run_dir, logger, console, trainer.config.env_id)
    finally:
        logger.close()
        trainer.envs.close()
    if metrics is None:
        console.print(
            f"stopped at step {trainer.global_step}, checkpoint saved: continue with "
            f"[bold]prefrl ppo --resume {run_dir}[/bold]"
        )
    return metrics


def run_ppo(
    config: PPOConfig, run_dir: Path | None, resume: Path | None, threads: int | None, console: Console
) -> int:
    from prefrl.cli.plots import plot_run

    frames = is_atari(config.env_id)
    torch.set_num_threads(threads or ((os.cpu_count() or 1) if frames else 1))
    defaults = defaults_source(config.env_id, resume)
    trainer, run_dir, logger = start_ppo(config, run_dir, resume, defaults)
    if defaults is not None:
        console.print(f"defaults: {defaults} (flags override them)")
    console.print(f"run directory: {run_dir}")
    start = time.perf_counter()
    metrics = train_run(trainer, run_dir, logger, console)
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


def start_rlhp(
    config: RLHPConfig,
    run_dir: Path | None,
    resume: Path | None,
    labeller_kind: str = "synthetic",
    defaults: str | None = None,
) -> tuple[RLHPTrainer, Path, PreferenceStore, Logger]:
    """Check everything, then create (or reopen) the run directory and build the loop."""
    check_device(config.ppo.device)
    check_device(config.ppo.acting_device, "--rollout-device")
    ppo = config.ppo
    check_segment_length(config)
    labeller = make_labeller(labeller_kind, config)
    check_labeller(config.feedback, labeller)
    human = labeller_kind == "human"
    if human:
        check_labelling_installed()
    probe_env(config.ppo, check_reward=labeller_kind == "synthetic")
    if resume is not None:
        check_same_labeller(resume / PREFERENCES_FILE, labeller_kind)
    envs = make_vec_env(ppo.env_id, ppo.num_envs, ppo.vectorization, render_states=human, **ppo.env_kwargs)
    try:
        check_reward_inputs(envs.single_observation_space)
        spaces = (envs.single_observation_space, envs.single_action_space)
        check_policy_inputs(*spaces, ppo.normalize_obs, ppo.env_id)
    except ValueError:
        envs.close()
        raise
    if labeller_kind == "flip-judge" and envs.single_observation_space.shape != (HOPPER_OBS_DIM,):
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
            run_dir = create_run_dir(run_dir or default, "rlhp", config, defaults)
            logger = open_run_logger(run_dir)
    except BaseException:
        envs.close()
        raise
    store = PreferenceStore(run_dir / PREFERENCES_FILE, env_id=ppo.env_id)
    store.set_meta("labeller_kind", labeller_kind)
    trainer = RLHPTrainer(config, labeller, store, envs)
    if state is not None:
        trainer.load_state_dict(state)
    return trainer, run_dir, store, logger


def make_labeller(kind: str, config: RLHPConfig) -> Labeller:
    """The labeller ``--labeller kind`` names (the synthetic one seeded from the run's seed)."""
    from prefrl.preferences.judges import FlipJudge
    from prefrl.preferences.labellers import HumanLabeller, SyntheticLabeller

    if kind == "human":
        return HumanLabeller(config.human)
    if kind == "flip-judge":
        return FlipJudge()
    return SyntheticLabeller(config.teacher, np.random.default_rng(config.ppo.seed + 2))


def resume_flags(labeller: str) -> str:
    """Flags that a resumed run needs besides --resume (the labeller is no part of the config)."""
    return "" if labeller == "synthetic" else f" --labeller {labeller}"


def close_rlhp(
    trainer: RLHPTrainer, store: PreferenceStore, logger: Logger, server: BackgroundServer | None
) -> None:
    """Stop what a preference run started: the labelling app, the refit process, the logger, the
    envs and the store."""
    if server is not None:
        server.stop()
    trainer.close()
    logger.close()
    trainer.ppo.envs.close()
    store.close()


def run_rlhp(
    config: RLHPConfig,
    run_dir: Path | None,
    resume: Path | None,
    threads: int,
    console: Console,
    labeller_kind: str = "synthetic",
) -> int:
    """``prefrl rlhp``: the preference loop; with people, the labelling app is served beside it."""
    from prefrl.cli.plots import plot_run

    torch.set_num_threads(threads)
    defaults = defaults_source(config.ppo.env_id, resume)
    loop_defaults = rlhp_preset(config.ppo)[1]
    if defaults is not None and loop_defaults is not None:
        defaults = f"{defaults}; {loop_defaults}"
    trainer, run_dir, store, logger = start_rlhp(config, run_dir, resume, labeller_kind, defaults)
    if defaults is not None:
        console.print(f"defaults: {defaults} (flags override them)")
    console.print(f"run directory: {run_dir} (answers in {run_dir / PREFERENCES_FILE})")
    server: BackgroundServer | None = None
    failed_start = False
    try:
        if trainer.done:
            console.print(f"{run_dir} already finished ({trainer.global_step} steps)")
            return 0
        if labeller_kind == "human":
            server = start_labelling(trainer, run_dir, console)
        metrics = train_gym(trainer, run_dir, logger, console, "rlhp")
        if labeller_kind == "human":
            report_answers(trainer, run_dir, console)
    except ValueError:  # e.g. no segments fit the first rollouts' episodes
        failed_start = resume is None and trainer.global_step == 0
        raise
    finally:
        close_rlhp(trainer, store, logger, server)
        if failed_start:  # nothing learned: leave nothing behind, the same --run-dir works again
            discard_failed_start(run_dir)
    if metrics is None:
        console.print(
            f"stopped at step {trainer.global_step}, checkpoint saved: continue with "
            f"[bold]prefrl rlhp --resume {run_dir}{resume_flags(labeller_kind)}[/bold]"
        )
        return 130
    plot = plot_run(run_dir)
    labels = f"{metrics.get('preferences/num_labels', 0):.0f} labels"
    if not trainer.true_reward_seen:
        console.print(
            f"{labels}; the env paid no reward, so there is no true return to report: watch the "
            f"agent with `prefrl video {run_dir}`; plot: {plot}",
            soft_wrap=True,
        )
        return 0
    window = metrics.get("env/return_window", float("nan"))
    console.print(f"true return (last 20 episodes) {window:.1f} with {labels}; plot: {plot}")
    return 0
