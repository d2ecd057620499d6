"""Which actor-critic an observation space gets: the Nature CNN for frames, the MLPs otherwise."""

from __future__ import annotations

import gymnasium as gym

from prefrl.datatypes import is_frames
from prefrl.ppo.cnn import CnnActorCritic
from prefrl.ppo.config import PPOConfig
from prefrl.ppo.policy import Activation, ActorCritic

Policy = ActorCritic | CnnActorCritic
"""An actor-critic of either kind: both have sample, act, evaluate, value and env_actions."""


def check_policy_inputs(
    observation_space: gym.Space,
    action_space: gym.Space,
    normalize_obs: bool,
    env_id: str,
    use_sde: bool = False,
    mixed_precision: bool = False,
) -> None:
    """A ValueError with the fix for what the policies cannot take: frames with continuous actions,
    frames with observation normalisation, state-dependent exploration without Box actions, mixed
    precision without frames."""
    if mixed_precision and not is_frames(observation_space):
        raise ValueError(
            f"--mixed-precision runs the convolutional trunk of pixel tasks in bfloat16; {env_id} has "
            f"{observation_space} observations (the MLPs are too small to gain): drop --mixed-precision"
        )
    if use_sde and not isinstance(action_space, gym.spaces.Box):
        raise ValueError(
            f"--use-sde explores continuous (Box) actions; {env_id} has {action_space} actions: "
            "drop --use-sde"
        )
    if not is_frames(observation_space):
        return
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(
            f"{env_id} gives frames with {action_space} actions; the convolutional policy takes Discrete "
            "actions only: pixel tasks with continuous actions are not supported"
        )
    if normalize_obs:
        raise ValueError(f"{env_id} gives frames (uint8), which the CNN scales itself: drop --normalize-obs")


def build_policy(
    observation_space: gym.spaces.Box,
    action_space: gym.Space,
    hidden_sizes: tuple[int, ...] = (64, 64),
    activation: Activation = "tanh",
    init_log_std: float = 0.0,
    sde: bool = False,
    ortho_init: bool = True,
    mixed_precision: bool = False,
) -> Policy:
    """The Nature CNN for (C, H, W) uint8 frames (its trunk in bfloat16 with ``mixed_precision``),
    else the MLPs (``hidden_sizes`` and the rest apply to the MLPs only)."""
    if is_frames(observation_space):
        return CnnActorCritic(observation_space, action_space, mixed_precision)
    return ActorCritic(
        observation_space, action_space, hidden_sizes, activation, init_log_std, sde, ortho_init
    )


def policy_for(config: PPOConfig, observation_space: gym.spaces.Box, action_space: gym.Space) -> Policy:
    """The actor-critic ``config`` asks for on these spaces (for training, and to load a checkpoint)."""
    return build_policy(
        observation_space, action_space, config.hidden_sizes, config.activation, config.init_log_std,
        config.use_sde, config.ortho_init, config.mixed_precision,
    )  # fmt: skip
