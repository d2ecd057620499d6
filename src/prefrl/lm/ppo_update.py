"""PPO-RLHF's update: clipped PPO over shuffled minibatches of a token rollout, this rank's share of
each minibatch, with the critic's value loss, the KL in the loss (critic-free estimators) and PPO-ptx's
pre-training term; the trainer (:class:`prefrl.lm.ppo.LMPPOTrainer`) holds the state."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any, Protocol

import torch

from prefrl.lm import distributed
from prefrl.lm.data import Batch, make_batch
from prefrl.lm.estimators import k3_kl
from prefrl.lm.generation import token_entropy, token_logprobs
from prefrl.lm.policy_critic import PolicyAndCritic
from prefrl.lm.ppo_config import LMPPOConfig
from prefrl.lm.rollout import TokenRollout
from prefrl.lm.sft import sft_loss
from prefrl.masked import masked_mean
from prefrl.ppo.losses import policy_loss, value_loss


class UpdateState(Protocol):
    """What the update reads and steps of the trainer (:class:`prefrl.lm.ppo.LMPPOTrainer`)."""

    config: LMPPOConfig
    accelerator: Any
    model: PolicyAndCritic
    forward_model: Any
    """(batch, ptx batch or None) -> (logits, values, ptx logits): the model as prepared for the ranks."""
    optimizer: torch.optim.Optimizer
    autocast: Callable[[], contextlib.AbstractContextManager]
    kl_coef: float
    shuffle_generator: torch.Generator
    rng: random.Random
    ptx: tuple[list[list[int]], list[list[int]]] | None
    tokenizer: Any
    device: torch.device


def update(trainer: UpdateState, rollout: TokenRollout) -> dict[str, float]:
    """``update_epochs`` passes of clipped PPO over shuffled minibatches (statistics averaged
    over minibatches and ranks); ends early past ``target_kl``."""
    cfg = trainer.config
    sums: dict[str, float] = {}
    count = 0
    stopped = False
    for _ in range(cfg.update_epochs):
        order = torch.randperm(cfg.batch_size, generator=trainer.shuffle_generator)
        for start in range(0, cfg.batch_size, cfg.minibatch_size):
            stats = minibatch_step(trainer, rollout, order[start : start + cfg.minibatch_size])
            if stats is None:
                stopped = True
                break
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
        if stopped:
            break
    keys = list(sums)
    metrics = {"lm/num_updates": float(count), "lm/early_stopped": float(stopped)}
    if count:
        means = distributed.mean_over_ranks(
            trainer.accelerator, torch.tensor([sums[k] / count for k in keys])
        )
        metrics.update(zip(keys, means.tolist(), strict=True))
    return metrics


def minibatch_step(
    trainer: UpdateState, rollout: TokenRollout, global_idx: torch.Tensor
) -> dict[str, float] | None:
    """One gradient step on a minibatch (this rank's share of it); None, without a step, when its
    approx-KL is past ``target_kl``."""
    cfg, b, acc = trainer.config, rollout.batch, trainer.accelerator
    idx = global_idx[distributed.chunk(len(global_idx), acc)]  # this rank's share
    share = distributed.token_share(b.response_mask[idx], b.response_mask[global_idx], acc)
    batch = Batch(
        b.input_ids[idx],
        b.attention_mask[idx],
        b.position_ids[idx],
        b.response_mask[idx],
        b.prompt_length,
    )
    mask = batch.response_mask
    ptx_batch, ptx_share = draw_ptx_batch(trainer, len(global_idx)) if cfg.ptx_coef > 0 else (None, 0.0)
    with trainer.autocast():
        logits, values, ptx_logits = trainer.forward_model(batch, ptx_batch)
    logprobs = token_logprobs(logits, batch.input_ids[:, batch.prompt_length :], cfg.temperature)
    pg_loss, stats = policy_loss(
        logprobs, rollout.logprobs[idx], rollout.advantages[idx], cfg.clip_coef, mask
    )
    if cfg.target_kl is not None:  # every rank must take the same decision
        approx_kl = distributed.mean_over_ranks(acc, torch.tensor(float(stats["approx_kl"])))
        if float(approx_kl) > cfg.target_kl:
            return None
    loss = pg_loss
    metrics = {"lm/policy_loss": float(pg_loss.detach())}
    if cfg.has_critic:
        clip = cfg.clip_coef if cfg.clip_vloss else None
        v_loss = value_loss(values, rollout.values[idx], rollout.returns[idx], clip, mask)
        loss = loss + cfg.vf_coef * v_loss
        metrics["lm/value_loss"] = float(v_loss.detach())
    if cfg.kl_in_loss:
        kl_loss = masked_mean(k3_kl(logprobs, rollout.ref_logprobs[idx]), mask)
        loss = loss + trainer.kl_coef * kl_loss
        metrics["lm/kl_loss"] = float(kl_loss.detach())
    loss = loss * share
    if ptx_batch is not None:
        ptx = sft_loss(ptx_logits, ptx_batch.input_ids[:, ptx_batch.prompt_length :], ptx_batch.response_mask)
        loss = loss + cfg.ptx_coef * ptx * ptx_share
        metrics["lm/ptx_loss"] = float(ptx.detach())
    distributed.optimizer_step(acc, trainer.model.parameters(), trainer.optimizer, loss)
    with torch.no_grad():
        metrics["lm/entropy"] = float(masked_mean(token_entropy(logits.detach(), cfg.temperature), mask))
    metrics["lm/approx_kl"] = float(stats["approx_kl"])
    metrics["lm/clip_frac"] = float(stats["clip_frac"])
    return metrics


def draw_ptx_batch(trainer: UpdateState, num: int) -> tuple[Batch, float]:
    """This rank's share of ``num`` demonstrations drawn for PPO-ptx, and its token share."""
    assert trainer.ptx is not None
    prompts, responses = trainer.ptx
    drawn = [trainer.rng.randrange(len(prompts)) for _ in range(num)]
    idx = drawn[distributed.chunk(num, trainer.accelerator)]
    batch = make_batch(
        [prompts[i] for i in idx], [responses[i] for i in idx], trainer.tokenizer.pad_token_id
    ).to(trainer.device)
    _, world = distributed.rank_and_world(trainer.accelerator)
    total = sum(len(responses[i]) for i in drawn)
    return batch, sum(len(responses[i]) for i in idx) * world / total
