"""Generalised advantage estimation (Schulman et al. 2016), the one GAE of the codebase."""

from __future__ import annotations

import torch


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets for (B, T) trajectories.

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - (terminated_t | truncated_t)) * A_{t+1}

    A terminated step does not bootstrap; a truncated step bootstraps from ``next_values``, the value
    of the final observation, and neither lets the next episode's advantages flow back into it.

    Args:
        rewards: (B, T) float.
        values: (B, T) V(s_t).
        next_values: (B, T) V(s_{t+1}), the value of the observation that followed step t.
        terminated: (B, T) bool.
        truncated: (B, T) bool.
        gamma: discount in [0, 1].
        gae_lambda: GAE lambda in [0, 1]; 1 gives Monte-Carlo returns minus values, 0 gives TD(0).
        valid: optional (B, T) bool. A False step (an autoreset step, padding) adds no TD error and
            gets advantage 0; such steps follow an episode end, which already cuts the chain.

    Returns:
        advantages (B, T) and returns = advantages + values (B, T).
    """
    assert rewards.shape == values.shape == next_values.shape == terminated.shape, (
        f"shape mismatch: rewards {tuple(rewards.shape)}, values {tuple(values.shape)}, "
        f"next_values {tuple(next_values.shape)}, terminated {tuple(terminated.shape)}"
    )
    not_terminated = (~terminated).to(rewards.dtype)
    not_done = (~(terminated | truncated)).to(rewards.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values
    carry = gamma * gae_lambda * not_done
    if valid is not None:
        deltas = deltas * valid.to(rewards.dtype)
    advantages = torch.empty_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        last = deltas[:, t] + carry[:, t] * last
        advantages[:, t] = last
    if valid is not None:
        advantages = torch.where(valid, advantages, torch.zeros_like(advantages))
    return advantages, advantages + values
