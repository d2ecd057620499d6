"""A language model as an MDP, written down once.

state s_t = (prompt, a_1 .. a_{t-1}); action a_t = the next response token; the transition appends it
(deterministic); the episode ends at the first EOS or at the length cap. Response tensors are (B, T)
with T the response length cap: ``mask`` (bool, True = a real response token) is True up to and
including the first EOS and False after it (padding). Every response token is one step.

Rewards (B, T) = the per-token KL penalty ``-kl_coef * (log pi(a_t|s_t) - log pi_ref(a_t|s_t))`` at
every real token, plus the sequence score (reward model or reward function) at the *last real token*
(the EOS if there is one, else the token at the length cap). Token- and segment-level rewards are
placed the same way with :func:`place_scores`. Nothing is bootstrapped past the last token: the last
real token is ``terminated`` for GAE, whether it is an EOS or the length cap (an unfinished response
is penalised through its score, :func:`eos_penalty`, not by bootstrapping).

These tensors feed :func:`prefrl.ppo.gae.gae` and :mod:`prefrl.ppo.losses` unchanged.
"""

from __future__ import annotations

import torch

from prefrl.masked import last_valid_index, masked_whiten
from prefrl.ppo.gae import gae


def response_mask(responses: torch.Tensor, eos_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) sampled tokens -> mask (B, T) bool, True up to and including the first EOS, and
    ended (B,) bool, whether the response has an EOS at all (False: it hit the length cap)."""
    is_eos = responses == eos_token_id
    eos_before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()  # EOS strictly before t
    return eos_before == 0, is_eos.any(dim=1)


def per_token_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) log pi(a_t|s_t) - log pi_ref(a_t|s_t) at the sampled tokens (the k1 estimator, whose sum
    over a response is an unbiased estimate of KL(pi || pi_ref) of that prompt); 0 outside ``mask``."""
    kl = logprobs - ref_logprobs
    return torch.where(mask, kl, torch.zeros_like(kl))


def place_scores(scores: torch.Tensor, positions: torch.Tensor, length: int) -> torch.Tensor:
    """(B, K) scores at (B, K) token positions -> (B, T=length) dense rewards (added where positions
    repeat). K = 1 with the last real token is a sequence-level reward; K segment ends give
    segment-level rewards; K = T with positions 0..T-1 gives token-level rewards."""
    assert scores.shape == positions.shape and scores.dim() == 2, (
        f"scores {tuple(scores.shape)} and positions {tuple(positions.shape)} must both be (B, K)"
    )
    assert bool((positions >= 0).all()) and bool((positions < length).all()), "positions out of range"
    out = torch.zeros(scores.shape[0], length, dtype=scores.dtype, device=scores.device)
    return out.scatter_add(1, positions.long(), scores)


def eos_penalty(scores: torch.Tensor, ended: torch.Tensor, penalty: float | None) -> torch.Tensor:
    """The "EOS trick": a response with no EOS gets score ``penalty`` instead of its score."""
    if penalty is None:
        return scores
    return torch.where(ended, scores, torch.full_like(scores, penalty))


def token_rewards(
    scores: torch.Tensor,
    kl: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    dense_rewards: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, T) rewards: -kl_coef * kl at every real token, plus the (B,) sequence ``scores`` at the last
    real token, plus optional (B, T) ``dense_rewards`` (token/segment level); 0 outside ``mask``."""
    assert scores.shape == (mask.shape[0],), f"scores must be (B,)={mask.shape[0]}, got {tuple(scores.shape)}"
    last = last_valid_index(mask)
    assert bool((last >= 0).all()), "every response must have at least one real token"
    rewards = -kl_coef * kl + place_scores(scores[:, None], last[:, None], mask.shape[1])
    if dense_rewards is not None:
        rewards = rewards + dense_rewards
    return torch.where(mask, rewards, torch.zeros_like(rewards))


def terminal_flags(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: True at the last real token of each response (the episode ends there)."""
    last = last_valid_index(mask)
    return torch.arange(mask.shape[1], device=mask.device)[None, :] == last[:, None]


def advantages_and_returns(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float = 1.0,
    gae_lambda: float = 0.95,
    norm_adv: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over response tokens with :func:`prefrl.ppo.gae.gae`: V(s_{t+1}) is the next token's
    value, the last real token terminates (no bootstrap), padding gets advantage 0.

    Args:
        rewards, values: (B, T) float; mask: (B, T) bool.

    Returns:
        advantages (B, T), whitened over real tokens if asked (0 at padding), and returns (B, T) =
        unwhitened advantages + values.
    """
    values = torch.where(mask, values, torch.zeros_like(values))
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    terminated = terminal_flags(mask)
    truncated = torch.zeros_like(terminated)
    advantages, returns = gae(rewards, values, next_values, terminated, truncated, gamma, gae_lambda, mask)
    if norm_adv:
        advantages = masked_whiten(advantages, mask)
    return advantages, returns


def whiten_rewards(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reward whitening over real tokens without a mean shift (scale only), 0 at padding."""
    return masked_whiten(rewards, mask, shift_mean=False)
