"""Sampling responses (with the log-probabilities they were drawn with) and recomputing those.

Sampling is a plain KV-cached loop over any transformers causal LM (left-padded prompts, position ids
that skip padding); it keeps the log-prob of each drawn token from the logits it was drawn from, so
the policy's log-probs at sampling time cost no extra forward. Log-probs are recomputed (the reference's,
and the policy's when asked) with one forward pass over prompt + response. Both divide the logits by the
sampling temperature (the policy and the reference alike) and normalise over the full vocabulary in
fp32, so the PPO ratio and the KL penalty are measured on the distribution that was actually sampled
from.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from prefrl.lm import distributed
from prefrl.lm.data import Batch, position_ids
from prefrl.lm.token_mdp import response_mask


@torch.no_grad()
def _cache_keyword() -> str:
    """The forward keyword of a KV cache: ``cache`` in transformers 5.x (``past_key_values``, the
    older name, warns there and goes in 5.40), ``past_key_values`` before."""
    import inspect

    from transformers import GPT2Model

    return "cache" if "cache" in inspect.signature(GPT2Model.forward).parameters else "past_key_values"


CACHE_KEYWORD = _cache_keyword()


def cache_of(output: Any) -> Any:
    """The KV cache a forward returned (``cache`` or, before transformers 5.x, ``past_key_values``)."""
    return output["cache"] if "cache" in output else output["past_key_values"]


def sample(
    model: torch.nn.Module,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    synced: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sample_with_logprobs` without the log-probs: (B, R) responses and their (B, R) mask."""
    responses, mask, _ = sample_with_logprobs(
        model,
        prompt_ids,
        prompt_mask,
        max_new_tokens,
        eos_token_id,
        pad_token_id,
        temperature,
        generator,
        synced,
    )
    return responses, mask


def sample_with_logprobs(
    model: torch.nn.Module,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    synced: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample up to ``max_new_tokens`` per prompt; with ``synced``, every rank takes as many steps as
    the longest (a sharded model's forward is collective).

    Args:
        prompt_ids, prompt_mask: (B, P) left-padded prompts and their bool mask.

    Returns:
        responses (B, R) with pad after the first EOS, mask (B, R) bool (True up to and including
        the EOS), and logprobs (B, R) fp32: log pi(token) at ``temperature`` of each drawn token, from
        the very logits it was drawn from (0 after the mask); R <= max_new_tokens (the loop stops once
        every row has ended).
    """
    attention = prompt_mask.long()
    out = model(
        input_ids=prompt_ids, attention_mask=attention, position_ids=position_ids(prompt_mask), use_cache=True
    )
    past, logits = cache_of(out), out.logits[:, -1]
    next_pos = prompt_mask.long().sum(-1)
    finished = torch.zeros(prompt_ids.shape[0], dtype=torch.bool, device=prompt_ids.device)
    tokens, logprobs = [], []
    for _ in range(max_new_tokens):
        scaled = logits.float() / temperature
        token = torch.multinomial(F.softmax(scaled, dim=-1), 1, generator=generator).squeeze(1)
        token = torch.where(finished, torch.full_like(token, pad_token_id), token)
        tokens.append(token)
        logprobs.append(scaled.gather(-1, token[:, None]).squeeze(1) - torch.logsumexp(scaled, dim=-1))
        finished = finished | (token == eos_token_id)
        done = bool(finished.all())
        if distributed.all_ranks(done, token.device) if synced else done:
            break
        attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
        out = model(
            input_ids=token[:, None],
            attention_mask=attention,
            position_ids=next_pos[:, None],
            use_cache=True,
            **{CACHE_KEYWORD: past},
        )
        past, logits, next_pos = cache_of(out), out.logits[:, -1], next_pos + 1
    responses = torch.stack(tokens, dim=1)
    mask, _ = response_mask(responses, eos_token_id)
    responses = torch.where(mask, responses, torch.full_like(responses, pad_token_id))
    return responses, mask, torch.where(mask, torch.stack(logprobs, dim=1), 0.0)


def response_logits(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """(B, R, V) logits that predict the response tokens (positions P-1 .. P+R-2), in fp32."""
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask.long(),
        position_ids=batch.position_ids,
    )
    start = batch.prompt_length - 1
    return out.logits[:, start : start + batch.response_mask.shape[1]].float()


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """(B, R, V) logits, (B, R) tokens -> (B, R) log pi(token) at ``temperature``, fp32."""
    logp = F.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, tokens[..., None]).squeeze(-1)


def token_entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """(B, R, V) -> (B, R) entropy of the temperature-scaled distribution."""
    logp = F.log_softmax(logits.float() / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def response_logprobs(model: torch.nn.Module, batch: Batch, temperature: float = 1.0) -> torch.Tensor:
    """(B, R) log-probs of the batch's response tokens under ``model`` at ``temperature``."""
    responses = batch.input_ids[:, batch.prompt_length :]
    return token_logprobs(response_logits(model, batch), responses, temperature)
