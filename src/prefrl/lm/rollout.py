"""What a language-model policy's batch of sampled responses becomes before the update: the token
MDP's rewards (or a sequence reward) and the estimator's advantages, with the rollout's metrics."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from prefrl.lm import token_mdp
from prefrl.lm.data import Batch
from prefrl.lm.estimators import estimate_advantages
from prefrl.lm.ppo_config import LMPPOConfig


@dataclass(frozen=True)
class TokenRollout:
    """One batch of sampled responses and everything the update needs, (B, R) unless noted."""

    batch: Batch
    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    metrics: dict[str, float]


def draw_prompts(rng: random.Random, num_prompts: int, batch_size: int, group_size: int = 1) -> list[int]:
    """``batch_size`` prompt indices: ``batch_size / group_size`` draws, each repeated ``group_size``
    times in a row (a group of responses to one prompt for rloo and grpo)."""
    draws = [rng.randrange(num_prompts) for _ in range(batch_size // group_size)]
    return [i for i in draws for _ in range(group_size)]


def token_rollout(
    cfg: LMPPOConfig, kl_coef: float, eos_token_id: int, batch: Batch, parts: dict[str, torch.Tensor]
) -> TokenRollout:
    """The token-level MDP: the score at the last real token, the KL to the reference per token
    (in the reward, or left to the loss), then the estimator's advantages (and the critic's
    returns for ppo); the rollout's metrics."""
    responses, mask, scores = (
        batch.input_ids[:, batch.prompt_length :],
        batch.response_mask,
        parts["scores"],
    )
    logprobs, ref_logprobs, values = parts["logprobs"], parts["ref_logprobs"], parts["values"]
    _, ended = token_mdp.response_mask(responses, eos_token_id)
    kl = token_mdp.per_token_kl(logprobs, ref_logprobs, mask)
    reward_kl_coef = 0.0 if cfg.kl_in_loss else kl_coef
    dense = parts.get("dense")
    if dense is not None:  # segment/token rewards; an unended response gets only the EOS penalty
        if cfg.eos_penalty is not None:
            dense = torch.where(ended[:, None], dense, torch.zeros_like(dense))
        scores_at_end = token_mdp.eos_penalty(torch.zeros_like(scores), ended, cfg.eos_penalty)
    else:
        scores_at_end = token_mdp.eos_penalty(scores, ended, cfg.eos_penalty)
    advantages, returns = estimate_advantages(
        cfg.estimator, scores_at_end, kl, values, mask, reward_kl_coef, cfg.gamma, cfg.gae_lambda,
        cfg.norm_adv, cfg.whiten_rewards, cfg.group_size, dense,
    )  # fmt: skip
    sequence_kl = kl.sum(1)
    metrics = {
        "lm/score": float(scores.mean()),
        "lm/kl": float(sequence_kl.mean()),
        "lm/sqrt_kl": float(sequence_kl.mean().clamp_min(0).sqrt()),
        "lm/kl_coef": kl_coef,
        "lm/non_score_reward": float(-reward_kl_coef * sequence_kl.mean()),
        "lm/response_length": float(mask.sum(1).float().mean()),
        "lm/eos_rate": float(ended.float().mean()),
    }
    if "gold" in parts:
        metrics["lm/gold_score"] = float(parts["gold"].mean())
    return TokenRollout(batch, logprobs, ref_logprobs, values, advantages, returns, metrics)
