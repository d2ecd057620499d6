"""Checks of a command's input that run before anything is written: the device, the env (a few
random steps), the segment length, the labeller of a resumed run, the labelling extra. Each ends in a
ValueError that says the fix."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from prefrl.envs.make import make_env
from prefrl.ppo.config import PPOConfig
from prefrl.preferences.store import PreferenceStore
from prefrl.rlhp import RLHPConfig

PROBE_STEPS = 50
"""Random-action steps taken to check an env before a run directory is written."""


def probe_env(config: PPOConfig, check_reward: bool = True) -> None:
    """A ValueError with the fix when the env's observations are not finite arrays of its observation
    space's shape, or (``check_reward``: the reward is what PPO or the synthetic labeller learns from)
    its reward is not a finite number: a random policy, a few steps, before anything is written."""
    kwargs = {k: v for k, v in config.env_kwargs.items() if k != "proxy_reward"}  # a wrapper
    env = make_env(config.env_id, **kwargs)
    shape = env.observation_space.shape
    try:
        obs, _ = env.reset(seed=config.seed)
        env.action_space.seed(config.seed)
        for step in range(PROBE_STEPS + 1):
            obs = np.asarray(obs)
            if obs.shape != shape or not np.all(np.isfinite(obs)):
                what = f"shape {obs.shape}, its space says {shape}" if obs.shape != shape else "NaN or inf"
                raise ValueError(
                    f"{config.env_id} returned an observation with {what} at step {step}: fix the env "
                    "(or wrap it, e.g. gymnasium.wrappers.FlattenObservation) so that observations match "
                    "its observation_space"
                )
            if step == PROBE_STEPS:
                break
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            if check_reward and (
                isinstance(reward, bool)
                or not isinstance(reward, int | float | np.number)
                or not math.isfinite(float(reward))
            ):
                raise ValueError(
                    f"{config.env_id} returned reward {reward!r} at step {step}, but PPO and the "
                    "synthetic labeller learn from the env's reward: use an env that reports a finite "
                    "numeric reward (or have people label: prefrl rlhp --labeller human)"
                )
            if terminated or truncated:
                obs, _ = env.reset()
    finally:
        env.close()


def check_device(device: str, flag: str = "--device") -> None:
    """A ValueError with the fix for a device string torch cannot parse or this machine lacks."""
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"{flag}: unknown device {device!r}: use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{flag} {device}: CUDA is not available on this machine; use {flag} cpu")


def check_segment_length(config: RLHPConfig) -> None:
    """A ValueError with the fix when segments cannot fit in the env's longest episode."""
    from prefrl.envs.make import resolve_spec

    max_steps = resolve_spec(config.ppo.env_id).max_episode_steps
    if config.segment_length is not None and max_steps and config.segment_length > max_steps:
        raise ValueError(
            f"--segment-length {config.segment_length} is longer than {config.ppo.env_id}'s episodes "
            f"({max_steps} steps at most): pass at most {max_steps}"
        )


def check_same_labeller(path: Path, kind: str) -> None:
    """A ValueError with the fix when a resumed run (its store at ``path``) was labelled by another
    kind of labeller (recorded in the store; older stores: the last answer's labeller)."""
    if not path.exists():
        return
    with PreferenceStore(path) as store:
        recorded = store.meta("labeller_kind")
        if recorded is None:
            comparisons = store.comparisons()
            recorded = comparisons[-1].labeller if comparisons else None
    if recorded is not None and recorded != kind:
        raise ValueError(
            f"this run's labels came from {recorded!r}, not {kind!r}: resume with --labeller {recorded}"
        )


def check_labelling_installed() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ValueError(
            "the labelling app needs its extra: pip install 'prefrl[app]' (FastAPI and uvicorn)"
        ) from None
