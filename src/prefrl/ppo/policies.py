"""Which actor-critic an observation space gets: the Nature CNN for frames, the MLPs otherwise."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from prefrl.ppo.cnn import CnnActorCritic
from prefrl.ppo.policy import Activation, ActorCritic

Policy = ActorCritic | CnnActorCritic
"""An actor-critic of either kind: both have sample, act, evaluate, value and env_actions."""


def build_policy(
    observation_space: gym.spaces.Box,
    action_space: gym.Space,
    hidden_sizes: tuple[int, ...] = (64, 64),
    activation: Activation = "tanh",
    init_log_std: float = 0.0,
) -> Policy:
    """The Nature CNN for (C, H, W) uint8 frames, else the MLPs (``hidden_sizes`` and the rest apply
    to the MLPs only)."""
    if len(observation_space.shape) == 3 and observation_space.dtype == np.uint8:
        return CnnActorCritic(observation_space, action_space)
    return ActorCritic(observation_space, action_space, hidden_sizes, activation, init_log_std)
