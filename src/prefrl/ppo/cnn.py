"""The Nature-CNN actor-critic (Mnih et al. 2015; the PPO paper's Atari network) for stacked frames.

A shared trunk (conv 32 8x8 stride 4, conv 64 4x4 stride 2, conv 64 3x3 stride 1, ReLU, a 512-unit
linear layer) under a categorical actor head and a value head, orthogonal init (sqrt 2 in the trunk,
0.01 actor, 1 critic), as CleanRL's ppo_atari. Observations are (N, C, H, W) uint8 frames, scaled
to [0, 1] inside; with ``mixed_precision`` the trunk runs in bfloat16 (autocast) and its features are
cast back to float32 for the heads. The interface is :class:`prefrl.ppo.policy.ActorCritic`'s.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prefrl.ppo.policy import categorical_logprob_entropy, gumbel_max_sample, layer_init


def conv_init(layer: nn.Conv2d, gain: float = math.sqrt(2)) -> nn.Conv2d:
    nn.init.orthogonal_(layer.weight, gain)
    assert layer.bias is not None
    nn.init.zeros_(layer.bias)
    return layer


def nature_trunk(in_channels: int, height: int, width: int) -> tuple[nn.Sequential, int]:
    """(the conv trunk with its 512-unit layer, 512)."""
    convs = nn.Sequential(
        conv_init(nn.Conv2d(in_channels, 32, 8, stride=4)),
        nn.ReLU(),
        conv_init(nn.Conv2d(32, 64, 4, stride=2)),
        nn.ReLU(),
        conv_init(nn.Conv2d(64, 64, 3, stride=1)),
        nn.ReLU(),
        nn.Flatten(),
    )
    with torch.no_grad():
        flat = int(convs(torch.zeros(1, in_channels, height, width)).shape[1])
    return nn.Sequential(convs, layer_init(nn.Linear(flat, 512), math.sqrt(2)), nn.ReLU()), 512


class CnnActorCritic(nn.Module):
    """Nature CNN with actor and critic heads on a shared trunk; Discrete actions."""

    batched_evaluation = False
    """The trunk is the cost: the rollout takes log-probs and values from the acting pass."""

    def __init__(
        self, observation_space: gym.spaces.Box, action_space: gym.Space, mixed_precision: bool = False
    ) -> None:
        super().__init__()
        self.mixed_precision = mixed_precision
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(
                f"the convolutional policy takes Discrete actions, got {action_space}: pixel tasks with "
                "continuous actions are not supported"
            )
        channels, height, width = observation_space.shape
        self.discrete = True
        self.trunk, features = nature_trunk(channels, height, width)
        self.trunk.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # 1.5x on a CPU
        self.actor = layer_init(nn.Linear(features, int(action_space.n)), 0.01)
        self.critic = layer_init(nn.Linear(features, 1), 1.0)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) uint8 (or floats in 0..255) -> (N, 512), the convolutions channels-last."""
        x = obs.contiguous(memory_format=torch.channels_last).float()  # the layout change on uint8
        with torch.autocast(x.device.type, torch.bfloat16, enabled=self.mixed_precision):
            return self.trunk(x.mul_(1.0 / 255.0)).float()

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N,)"""
        return self.critic(self.features(obs)).squeeze(-1)

    def sample(
        self, obs: torch.Tensor, generator: torch.Generator | None = None, deterministic: bool = False
    ) -> torch.Tensor:
        """(N, C, H, W) -> (N,) sampled actions (the most likely with ``deterministic``)."""
        logits = self.actor(self.features(obs))
        return logits.argmax(-1) if deterministic else gumbel_max_sample(logits, generator)

    def act(
        self, obs: torch.Tensor, generator: torch.Generator | None = None, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, C, H, W) -> actions (N,), their log-probs (N,), values (N,), from one trunk pass."""
        hidden = self.features(obs)
        logits = self.actor(hidden)
        actions = logits.argmax(-1) if deterministic else gumbel_max_sample(logits, generator)
        logprob, _ = categorical_logprob_entropy(logits, actions)
        return actions, logprob, self.critic(hidden).squeeze(-1)

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, C, H, W), (N,) actions -> log-probs (N,), entropies (N,), values (N,)."""
        hidden = self.features(obs)
        logprob, entropy = categorical_logprob_entropy(self.actor(hidden), actions)
        return logprob, entropy, self.critic(hidden).squeeze(-1)

    def env_actions(self, actions: torch.Tensor) -> np.ndarray:
        return actions.detach().cpu().numpy()
