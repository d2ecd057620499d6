"""The Bradley-Terry preference model as pure functions: the one Bradley-Terry loss of the codebase,
used for gymnasium segments and for language-model responses alike.

P[segment 1 > segment 2] = sigmoid(R1 - R2 - margin), with R the undiscounted sum of predicted
rewards over a segment. With the noise model of Christiano et al. (2017) a share ``noise`` of the
answers is assumed uniformly random: P = (1 - noise) * sigmoid(R1 - R2) + noise / 2. Labels are the
probability that segment 1 is preferred: 1, 0, or 0.5 for "equally good".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def segment_returns(rewards: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(..., S) per-step rewards -> (...,) undiscounted sums (over the True steps of ``mask``)."""
    if mask is not None:
        rewards = torch.where(mask, rewards, torch.zeros_like(rewards))
    return rewards.sum(-1)


def preference_logprobs(
    returns_1: torch.Tensor, returns_2: torch.Tensor, noise: float = 0.0, margin: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """log P[1 > 2] and log P[2 > 1], computed in log space; any matching shapes."""
    assert 0.0 <= noise < 1.0, f"noise must be in [0, 1), got {noise}"
    diff = returns_1 - returns_2 - margin
    log_p1, log_p2 = F.logsigmoid(diff), F.logsigmoid(-diff)
    if noise > 0.0:
        keep, rand = math.log1p(-noise), math.log(noise / 2.0)
        log_p1 = torch.logaddexp(log_p1 + keep, torch.full_like(log_p1, rand))
        log_p2 = torch.logaddexp(log_p2 + keep, torch.full_like(log_p2, rand))
    return log_p1, log_p2


def bradley_terry_loss(
    returns_1: torch.Tensor,
    returns_2: torch.Tensor,
    labels: torch.Tensor,
    noise: float = 0.0,
    margin: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy of the labels under the Bradley-Terry model.

    Args:
        returns_1, returns_2: (E, B) predicted segment returns of E ensemble members, or (B,).
        labels: (B,) or (E, B) P[1 preferred] in {0, 0.5, 1} (per member after bootstrapping).
        noise: share of answers assumed uniformly random (0.1 in the paper).
        margin: subtracted from R1 - R2 (a preference-strength margin for language models).

    Returns:
        The loss, averaged over comparisons and summed over members, and detached metrics:
        ``accuracy`` (share of clear labels whose preferred segment has the higher return, averaged
        over members) and ``loss_per_member`` (E,).
    """
    assert returns_1.shape == returns_2.shape and returns_1.shape[-1] == labels.shape[-1], (
        f"shapes: returns {tuple(returns_1.shape)}, {tuple(returns_2.shape)}, labels {tuple(labels.shape)}"
    )
    labels = labels.to(returns_1.dtype)
    log_p1, log_p2 = preference_logprobs(returns_1, returns_2, noise, margin)
    per_member = -(labels * log_p1 + (1.0 - labels) * log_p2).mean(-1)
    with torch.no_grad():
        clear = labels != 0.5
        right = (returns_1 > returns_2) == (labels > 0.5)
        accuracy = (right & clear).to(labels.dtype).sum(-1) / clear.sum(-1).clamp_min(1)
    return per_member.sum(), {"accuracy": accuracy.mean(), "loss_per_member": per_member.detach()}
