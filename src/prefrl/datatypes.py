"""Typed records passed between components. Layout: batch first, time last, (B, T).

Letters: B environments (batch), T time steps, D observation dim, A action dim (absent for
discrete actions), N flattened samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def is_frames(space: Any) -> bool:
    """A (C, H, W) uint8 observation space: stacked frames (Atari), which get the convolutional
    policy and reward model; flat (D,) spaces get the MLPs."""
    return len(getattr(space, "shape", None) or ()) == 3 and getattr(space, "dtype", None) == np.uint8


@dataclass(frozen=True)
class Rollout:
    """What one PPO rollout collected from B vector-env copies over T steps.

    Gymnasium's next-step autoreset means that the step after an episode ends only resets that env:
    its transition is not real and ``valid`` is False there. On such a step ``obs`` holds the final
    observation of the finished episode, so ``values[:, t + 1]`` is the value that a truncated step
    ``t`` bootstraps from.
    """

    obs: torch.Tensor
    """(B, T, D) float32 observations the policy acted on (normalised if normalisation is on)."""
    actions: torch.Tensor
    """(B, T) int64 for discrete actions, (B, T, A) float32 (unclipped samples) for Box."""
    logprobs: torch.Tensor
    """(B, T) log-probability of ``actions`` under the policy that collected them."""
    values: torch.Tensor
    """(B, T) critic values of ``obs``."""
    rewards: torch.Tensor
    """(B, T) rewards the agent learns from (scaled if reward scaling is on)."""
    terminated: torch.Tensor
    """(B, T) bool: the episode ended in a terminal state at this step (no bootstrap)."""
    truncated: torch.Tensor
    """(B, T) bool: the episode was cut (time limit) at this step (bootstrap from the final obs)."""
    valid: torch.Tensor
    """(B, T) bool: True for a real transition, False for an autoreset step."""
    last_values: torch.Tensor
    """(B,) critic values of the observations after the last step."""
    raw_obs: torch.Tensor
    """(B, T, D) float32 observations as the env returned them (for segments and reward models)."""
    env_actions: torch.Tensor
    """(B, T) or (B, T, A): the actions that entered the env (Box actions clipped to the bounds)."""
    true_rewards: torch.Tensor
    """(B, T) float32 env rewards, whatever the agent learned from (diagnostics, synthetic labels)."""
    render_states: torch.Tensor | None = None
    """(B, T, K) float64 simulator state before each step (what ``render_state`` in the env's info
    held, see ``envs.render_state``), or (B, T, H, W, 3) uint8 frames for envs without one, to render
    clips for people; None unless the envs report it."""

    @property
    def next_values(self) -> torch.Tensor:
        """(B, T) value of the observation that followed each step."""
        return torch.cat([self.values[:, 1:], self.last_values[:, None]], dim=1)


@dataclass(frozen=True)
class Segment:
    """S consecutive steps of one episode, as the agent lived them."""

    obs: np.ndarray
    """(S, D) raw observations."""
    actions: np.ndarray
    """(S,) int discrete or (S, A) float env actions."""
    true_rewards: np.ndarray
    """(S,) the env's own rewards: for synthetic labellers and diagnostics only, never for the agent
    or the reward model."""
    render_state: np.ndarray | None = None
    """(S, K) simulator state at each step (MuJoCo qpos+qvel, classic control ``state``), from which
    ``labelling.render`` draws the clip a person sees; None when the run does not need clips."""
    num_real: int | None = None
    """Steps before the episode terminated; the rest of the segment is the absorbing state after
    termination (obs and render state held at the last real step, zero actions and true rewards),
    whose reward the reward model learns as one number. None: every step is real."""

    def __len__(self) -> int:
        return self.obs.shape[0]

    @property
    def mask(self) -> np.ndarray:
        """(S,) bool, True for a real step, False for the absorbing state after termination."""
        real = len(self) if self.num_real is None else self.num_real
        return np.arange(len(self)) < real

    @property
    def true_return(self) -> float:
        return float(self.true_rewards.sum())


@dataclass(frozen=True)
class ComparisonBatch:
    """B labelled pairs of segments of S steps, ready for the reward model."""

    obs_1: torch.Tensor
    """(B, S, D) observations of the first segments."""
    actions_1: torch.Tensor
    """(B, S) int64 or (B, S, A) float32 env actions of the first segments."""
    obs_2: torch.Tensor
    """(B, S, D)"""
    actions_2: torch.Tensor
    """(B, S) or (B, S, A)"""
    labels: torch.Tensor
    """(B,) float: P[segment 1 preferred] in {0, 0.5, 1}."""
    mask_1: torch.Tensor | None = None
    """(B, S) bool, True for real steps, False for the absorbing state (``Segment.mask``); None: all real."""
    mask_2: torch.Tensor | None = None
    """(B, S) bool"""

    def __len__(self) -> int:
        return self.labels.shape[0]

    def index(self, idx: torch.Tensor) -> ComparisonBatch:
        """The pairs at ``idx``; an (E, M) index gives per-member (E, M, ...) tensors."""
        return ComparisonBatch(
            self.obs_1[idx], self.actions_1[idx], self.obs_2[idx], self.actions_2[idx], self.labels[idx],
            None if self.mask_1 is None else self.mask_1[idx],
            None if self.mask_2 is None else self.mask_2[idx],
        )  # fmt: skip


@dataclass(frozen=True)
class RatingBatch:
    """B segments of S steps, each scored by a person on an ordinal scale, ready for the reward model."""

    obs: torch.Tensor
    """(B, S, D) observations."""
    actions: torch.Tensor
    """(B, S) int64 or (B, S, A) float32 env actions."""
    ratings: torch.Tensor
    """(B,) int64 classes, 0 (worst) .. n - 1 (best)."""
    mask: torch.Tensor | None = None
    """(B, S) bool, True for real steps (``Segment.mask``); None: all real."""

    def __len__(self) -> int:
        return self.ratings.shape[0]

    def index(self, idx: torch.Tensor) -> RatingBatch:
        """The segments at ``idx``; an (E, M) index gives per-member (E, M, ...) tensors."""
        mask = None if self.mask is None else self.mask[idx]
        return RatingBatch(self.obs[idx], self.actions[idx], self.ratings[idx], mask)


@dataclass(frozen=True)
class PPOBatch:
    """Flattened valid samples of a rollout with their advantages, ready for minibatches."""

    obs: torch.Tensor
    """(N, D)"""
    actions: torch.Tensor
    """(N,) or (N, A)"""
    logprobs: torch.Tensor
    """(N,) log-probabilities under the rollout policy."""
    values: torch.Tensor
    """(N,) values under the rollout critic."""
    advantages: torch.Tensor
    """(N,) GAE advantages."""
    returns: torch.Tensor
    """(N,) value targets: advantages + values."""

    def __len__(self) -> int:
        return self.obs.shape[0]

    def index(self, idx: torch.Tensor) -> PPOBatch:
        """The samples at ``idx`` (a minibatch)."""
        return PPOBatch(
            obs=self.obs[idx],
            actions=self.actions[idx],
            logprobs=self.logprobs[idx],
            values=self.values[idx],
            advantages=self.advantages[idx],
            returns=self.returns[idx],
        )
