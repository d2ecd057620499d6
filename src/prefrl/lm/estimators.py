"""Advantage estimators for a language-model policy, as pure functions. PPO's is GAE with a critic over
the token MDP (:func:`prefrl.lm.token_mdp.advantages_and_returns`); the critic-free ones treat a
sampled response as one action:

- RLOO (Ahmadian et al. 2024): k responses per prompt; a response's advantage is its sequence reward
  minus the mean of the other k - 1 rewards of its prompt (the leave-one-out baseline).
- GRPO (Shao et al. 2024): k responses per prompt; the advantage is the sequence reward normalised by
  its group's mean and standard deviation; the KL to the reference usually enters the loss, with the
  k3 estimator (:func:`k3_kl`), not the reward.
- REINFORCE++ (Hu 2025): the token MDP's per-token rewards (score at the last token, per-token KL
  penalty), returns-to-go, normalised over the batch's tokens; no critic, no groups.

A sequence-level advantage is given to every token of its response. Rows of a group are contiguous:
rows ``g * k .. g * k + k - 1`` answer the same prompt. Shapes: B responses, R response tokens.
"""

from __future__ import annotations

from typing import Literal

import torch

from prefrl.lm import token_mdp
from prefrl.masked import masked_whiten

Estimator = Literal["ppo", "rloo", "grpo", "reinforce++"]
"""How advantages are estimated: PPO (GAE with a critic) or one of the critic-free estimators."""

GROUPED: tuple[Estimator, ...] = ("rloo", "grpo")
"""The estimators that sample several responses per prompt."""

GROUP_STD_EPS = 1e-4
"""Added to a group's standard deviation (GRPO): a group of equal rewards gets advantage 0."""


def sequence_rewards(
    scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> torch.Tensor:
    """(B,) scores, (B, R) per-token KL, (B, R) bool mask -> (B,) score - kl_coef * sum of the KL."""
    return scores - kl_coef * torch.where(mask, kl, torch.zeros_like(kl)).sum(1)


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    assert rewards.dim() == 1 and len(rewards) % group_size == 0 and group_size >= 2, (
        f"{len(rewards)} rewards do not form groups of {group_size} (>= 2)"
    )
    return rewards.view(-1, group_size)


def rloo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) sequence rewards -> (B,) reward minus the mean of the other rewards of its group."""
    groups = _groups(rewards, group_size)
    others = (groups.sum(1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others).reshape(-1)


def grpo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) sequence rewards -> (B,) (reward - group mean) / (group std + GROUP_STD_EPS); the
    unbiased standard deviation, as the GRPO paper's implementation."""
    groups = _groups(rewards, group_size)
    mean, std = groups.mean(1, keepdim=True), groups.std(1, keepdim=True)
    return ((groups - mean) / (std + GROUP_STD_EPS)).reshape(-1)


def reinforce_pp_advantages(token_rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """(B, R) per-token rewards -> (B, R) discounted returns-to-go, whitened over the batch's real
    tokens (0 at padding)."""
    returns, _ = token_mdp.advantages_and_returns(
        token_rewards, torch.zeros_like(token_rewards), mask, gamma, gae_lambda=1.0, norm_adv=False
    )
    return masked_whiten(returns, mask)


def per_token(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) sequence advantages -> (B, R) the same value on every real token, 0 at padding."""
    return advantages[:, None] * mask.to(advantages.dtype)


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi || pi_ref) by the k3 estimator, exp(d) - d - 1 with d = log pi_ref - log pi:
    unbiased under samples of pi, never negative; differentiable in ``logprobs`` (GRPO's KL loss)."""
    d = ref_logprobs - logprobs
    return d.exp() - d - 1.0


def estimate_advantages(
    estimator: Estimator,
    scores: torch.Tensor,
    kl: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    gamma: float = 1.0,
    gae_lambda: float = 0.95,
    norm_adv: bool = True,
    whiten_rewards: bool = False,
    group_size: int = 1,
    dense: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) scores, (B, R) per-token KL to the reference, (B, R) values (ppo only), (B, R) mask ->
    (B, R) advantages and (B, R) returns (the critic's targets; zeros without a critic).
    ``kl_coef``: the KL penalty in the reward (0 when it is a loss term). ``norm_adv`` and
    ``gae_lambda`` are ppo's; ``whiten_rewards`` applies to the per-token rewards (ppo,
    reinforce++); ``group_size`` to rloo and grpo. ``dense``: (B, R) segment or token rewards on top
    of ``scores`` (the critic-free estimators sum them into the sequence reward)."""
    if estimator in GROUPED:
        total = scores if dense is None else scores + torch.where(mask, dense, torch.zeros_like(dense)).sum(1)
        sequence = sequence_rewards(total, kl, mask, kl_coef)
        grouped = rloo_advantages if estimator == "rloo" else grpo_advantages
        return per_token(grouped(sequence, group_size), mask), torch.zeros_like(values)
    rewards = token_mdp.token_rewards(scores, kl, mask, kl_coef, dense)
    if whiten_rewards:
        rewards = token_mdp.whiten_rewards(rewards, mask)
    if estimator == "reinforce++":
        return reinforce_pp_advantages(rewards, mask, gamma), torch.zeros_like(values)
    return token_mdp.advantages_and_returns(rewards, values, mask, gamma, gae_lambda, norm_adv)
