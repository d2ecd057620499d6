"""Deterministic evaluation, and loading a trained agent back from a run directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from prefrl.checkpoint import load_checkpoint
from prefrl.envs.make import make_env
from prefrl.envs.normalize import ObsNormalizer
from prefrl.ppo.config import PPOConfig
from prefrl.ppo.policies import Policy, policy_for
from prefrl.validation import config_from_dict


@dataclass
class Agent:
    """A trained policy with the observation statistics it was trained with (frozen)."""

    policy: Policy
    obs_normalizer: ObsNormalizer

    def act(self, obs: np.ndarray, deterministic: bool = True) -> Any:
        """One raw observation (D,) -> the env action (greedy / Gaussian mean by default)."""
        x = self.obs_normalizer(np.asarray(obs, dtype=np.float64)[None], update=False)
        device = next(self.policy.parameters()).device
        with torch.inference_mode():
            action = self.policy.sample(torch.from_numpy(x).to(device), deterministic=deterministic)
        return self.policy.env_actions(action)[0]


def load_agent(checkpoint_path: Path, device: str = "cpu") -> tuple[PPOConfig, Agent]:
    """The config of a checkpoint and the agent (policy + observation normaliser) it stores."""
    state = load_checkpoint(checkpoint_path, device)
    config = config_from_dict(PPOConfig, state["config"])
    env = make_env(config.env_id, **config.env_kwargs)
    obs_space = env.observation_space
    assert isinstance(obs_space, gym.spaces.Box)
    policy = policy_for(config, obs_space, env.action_space).to(device)
    env.close()
    policy.load_state_dict(state["policy"])
    policy.eval()
    normalizer = ObsNormalizer(obs_space.shape, config.normalize_obs)
    normalizer.load_state_dict(state["collector"]["obs_normalizer"])
    return config, Agent(policy, normalizer)


def evaluate_policy(
    policy: Policy,
    obs_normalizer: ObsNormalizer,
    env_id: str,
    num_episodes: int,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
) -> list[float]:
    """Returns of ``num_episodes`` deterministic episodes on a single env seeded ``seed + i``."""
    return episode_returns(Agent(policy, obs_normalizer).act, env_id, num_episodes, seed, env_kwargs)


def random_policy_returns(
    env_id: str, num_episodes: int, seed: int, env_kwargs: dict[str, Any] | None = None
) -> list[float]:
    """Returns of ``num_episodes`` episodes of uniformly random actions (seeded ``seed + i``): the
    zero of a normalised return."""
    return episode_returns(None, env_id, num_episodes, seed, env_kwargs)


def episode_returns(
    act: Callable[[np.ndarray], Any] | None,
    env_id: str,
    num_episodes: int,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
) -> list[float]:
    """True returns of ``num_episodes`` episodes of ``act(obs) -> action`` (None: uniformly random
    actions, the action space seeded ``seed``) on one env reset with seed ``seed + i``."""
    env = make_env(env_id, **(env_kwargs or {}))
    env.action_space.seed(seed)
    returns = []
    try:
        for i in range(num_episodes):
            obs, _ = env.reset(seed=seed + i)
            total, done = 0.0, False
            while not done:
                action = env.action_space.sample() if act is None else act(obs)
                obs, reward, term, trunc, _ = env.step(action)
                total += float(reward)
                done = bool(term or trunc)
            returns.append(total)
    finally:
        env.close()
    return returns


def normalised_return(value: float, random: float, yardstick: float) -> float:
    """(R - R_random) / (R_yardstick - R_random): 0 = a random policy, 1 = the yardstick."""
    return (value - random) / (yardstick - random)
