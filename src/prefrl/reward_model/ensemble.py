"""The reward model: an ensemble of MLPs on (observation, action), normalised for the agent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prefrl.datatypes import is_frames
from prefrl.reward_model.nets import EnsembleCNN, EnsembleMLP
from prefrl.reward_model.ratings import DEFAULT_SHARPNESS, normalised_returns
from prefrl.validation import require, require_positive, validation_enabled

RewardInputs = Literal["obs_action", "obs"]
STD_EPS = 1e-8
"""Added to each member's reward std before dividing by it."""


@dataclass(frozen=True)
class RewardModelConfig:
    num_members: int = 3
    """Ensemble size E (the paper uses 3)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layers of each member (the paper's MuJoCo net: 2 x 64, leaky ReLU)."""
    inputs: RewardInputs = "obs_action"
    """What the reward sees per step: observation and action, or the observation alone."""
    dropout: float = 0.0
    """Dropout on hidden layers while fitting (MLPs)."""
    conv_dropout: float = 0.5
    """Frames: dropout on the conv layers while fitting (the paper's Atari predictor: 0.5)."""
    noise: float = 0.1
    """Share of answers assumed uniformly random in the Bradley-Terry likelihood (0: no noise model)."""
    reward_std: float = 1.0
    """Std of the normalised reward the agent sees (1 for MuJoCo, 0.05 for Atari in the paper)."""
    rating_classes: int = 5
    """Points of the rating scale (ratings 0 .. n - 1), when the model is fitted to ratings."""
    rating_sharpness: float = DEFAULT_SHARPNESS
    """k of the rating likelihood: how steeply a class's probability falls as the normalised return
    leaves its range (``reward_model/ratings.py``; 10-100 fit a toy scale alike, 300 worse)."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        require_positive("num_members", self.num_members)
        require_positive("reward_std", self.reward_std)
        require(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        require(0.0 <= self.conv_dropout < 1.0, f"conv_dropout must be in [0, 1), got {self.conv_dropout}")
        require(0.0 <= self.noise < 1.0, f"noise must be in [0, 1), got {self.noise}: fix --noise")
        require(self.rating_classes >= 2, f"rating_classes must be >= 2, got {self.rating_classes}")
        require_positive("rating_sharpness", self.rating_sharpness)


def check_reward_inputs(observation_space: gym.Space) -> None:
    """The reward model takes flat observations (MLPs) or (C, H, W) uint8 frames (the conv net): a
    ValueError for anything else, with what works."""
    shape = getattr(observation_space, "shape", None) or ()
    if len(shape) != 1 and not is_frames(observation_space):
        raise ValueError(
            f"the reward model takes flat observations or (C, H, W) uint8 frames, not observations of "
            f"shape {shape}: wrap the env (gymnasium.wrappers.FlattenObservation, or grey frames with "
            "FrameStackObservation)"
        )


class RewardModel(nn.Module):
    """r_hat(s, a): E members; the agent's reward is the mean of the members after each is
    normalised to zero mean and std ``reward_std`` on recent data (:meth:`fit_normalization`).
    Frames ((C, H, W) uint8) get the convolutional net on the observation alone (the paper's Atari
    predictor), flat observations the MLPs on ``config.inputs``."""

    def __init__(
        self, observation_space: gym.spaces.Box, action_space: gym.Space, config: RewardModelConfig
    ) -> None:
        super().__init__()
        check_reward_inputs(observation_space)
        self.config = config
        self.obs_dim = int(np.prod(observation_space.shape))
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.frames = is_frames(observation_space)
        self.net: EnsembleMLP | EnsembleCNN
        if self.frames:
            self.action_dim = 0
            self.input_shape: tuple[int, ...] = tuple(observation_space.shape)
            self.net = EnsembleCNN(config.num_members, self.input_shape, dropout=config.conv_dropout)
        elif config.inputs == "obs":
            self.action_dim = 0
        elif self.discrete:
            assert isinstance(action_space, gym.spaces.Discrete)
            self.action_dim = int(action_space.n)
        else:
            assert isinstance(action_space, gym.spaces.Box)
            self.action_dim = int(np.prod(action_space.shape))
        if not self.frames:
            self.input_shape = (self.obs_dim + self.action_dim,)
            self.net = EnsembleMLP(
                config.num_members, self.obs_dim + self.action_dim, config.hidden_sizes, config.dropout
            )
        self.register_buffer("reward_mean", torch.zeros(config.num_members))
        self.register_buffer("reward_scale", torch.ones(config.num_members))
        self.absorbing_reward = nn.Parameter(torch.zeros(config.num_members))
        """(E,) each member's raw reward per step in the absorbing state after termination."""

    reward_mean: torch.Tensor
    reward_scale: torch.Tensor

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object) -> None:
        # reward models saved before the absorbing state had none: their segments were all real
        state_dict.setdefault(prefix + "absorbing_reward", torch.zeros_like(self.absorbing_reward))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def features(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(..., D) obs and (...,) or (..., A) actions -> (..., F) inputs (one-hot discrete actions);
        frames (..., C, H, W) as they are (the conv net scales them)."""
        if self.frames:
            return obs
        if self.action_dim == 0:
            return obs.float()
        if self.discrete:
            actions = nn.functional.one_hot(actions.long(), self.action_dim).float()
        return torch.cat([obs.float(), actions.float()], dim=-1)

    def per_member_segment_returns(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(E, M, S, D) per-member segments, (E, M, S) real-step mask -> (E, M) undiscounted raw
        returns (steps past termination earn ``absorbing_reward``)."""
        e, m, s = obs.shape[:3]
        x = self.features(obs, actions).reshape(e, m * s, *self.input_shape)
        return self._absorbed(self.net(x).reshape(e, m, s), mask).sum(-1)

    def segment_returns(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, S, D) segments shared by all members, (B, S) real-step mask -> (E, B) raw returns."""
        b, s = obs.shape[:2]
        x = self.features(obs, actions).reshape(b * s, *self.input_shape)
        return self._absorbed(self.net(x).reshape(-1, b, s), mask).sum(-1)

    def _absorbed(self, rewards: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(E, M, S) per-step rewards with the steps where ``mask`` ((M, S) or (E, M, S)) is False
        replaced by each member's absorbing reward."""
        if mask is None:
            return rewards
        return torch.where(mask, rewards, self.absorbing_reward[:, None, None])

    @torch.no_grad()
    def normalised_absorbing_reward(self) -> torch.Tensor:
        """() the absorbing state's reward per step as the agent sees rewards (as :meth:`forward`)."""
        normalised = (self.absorbing_reward - self.reward_mean) / self.reward_scale
        return normalised.mean() * self.config.reward_std

    @torch.no_grad()
    def absorbing_value(self, gamma: float) -> torch.Tensor:
        """() what the agent should expect after terminating: the discounted sum from the next step
        of the normalised absorbing reward, sum_k>=1 gamma^k r_abs = gamma r_abs / (1 - gamma)."""
        return self.normalised_absorbing_reward() * gamma / (1.0 - gamma)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(N, D), (N, ...) -> (N,) normalised ensemble-mean reward for the agent."""
        raw = self.net(self.features(obs, actions))  # (E, N)
        normalised = (raw - self.reward_mean[:, None]) / self.reward_scale[:, None]
        return normalised.mean(0) * self.config.reward_std

    @torch.no_grad()
    def agent_reward(
        self, obs: np.ndarray, actions: np.ndarray, terminated: np.ndarray, gamma: float | None
    ) -> np.ndarray:
        """(N, D) raw observations, (N, ...) env actions, (N,) terminated -> (N,) float64 reward the
        agent is paid: the normalised reward, plus on a terminating step the absorbing state's
        discounted value (``gamma``; None: no absorbing state)."""
        x = torch.from_numpy(obs)
        x = x if x.dtype == torch.uint8 else x.float()  # frames stay uint8: the conv net scales them
        reward = self(x, torch.from_numpy(np.asarray(actions))).numpy().astype(np.float64)
        if gamma is not None and terminated.any():
            reward = reward + terminated * float(self.absorbing_value(gamma))
        return reward

    @torch.no_grad()
    def fit_normalization(self, obs: torch.Tensor, actions: torch.Tensor) -> None:
        """Set each member's mean and std from (N, D), (N, ...) recent steps."""
        raw = self.net(self.features(obs, actions))
        self.reward_mean.copy_(raw.mean(1))
        self.reward_scale.copy_(
            raw.std(1).clamp_min(STD_EPS) if raw.shape[1] > 1 else torch.ones_like(raw[:, 0])
        )

    @torch.no_grad()
    def preference_disagreement(
        self,
        obs_1: torch.Tensor,
        actions_1: torch.Tensor,
        obs_2: torch.Tensor,
        actions_2: torch.Tensor,
        mask_1: torch.Tensor | None = None,
        mask_2: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B,) variance across members of P[1 > 2] for B candidate pairs of (S, D) segments."""
        r1 = self.segment_returns(obs_1, actions_1, mask_1)
        p = torch.sigmoid(r1 - self.segment_returns(obs_2, actions_2, mask_2))
        return p.var(0, unbiased=False) if p.shape[0] > 1 else torch.zeros(p.shape[1])

    @torch.no_grad()
    def rating_disagreement(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B,) variance across members of where B candidate (S, D) segments fall on each member's
        scale (its returns min-max normalised over the candidates, as the rating likelihood does)."""
        normalised = normalised_returns(self.segment_returns(obs, actions, mask))
        return normalised.var(0, unbiased=False) if normalised.shape[0] > 1 else torch.zeros(obs.shape[0])
