"""PPO-RLHF: the policy is a causal LM, the reward is a reward model's (or a Python function's) score
of the finished response, minus a per-token KL penalty to a frozen reference (the SFT model).

The math is shared with the gymnasium side: the MDP mapping is :mod:`prefrl.lm.token_mdp`, GAE is
:func:`prefrl.ppo.gae.gae`, the clipped policy and value losses are :mod:`prefrl.ppo.losses`. Every
iteration logs the proxy score (what the policy optimises), the gold score (when a ``gold_fn`` is
given: what we really want) and KL(pi || pi_ref), so reward hacking is measured, not guessed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from prefrl.lm import distributed, ppo_update
from prefrl.lm.data import (
    Batch,
    batch_from_tensors,
    check_lengths,
    check_tokenizer,
    context_length,
    encode,
    left_pad,
)
from prefrl.lm.estimators import GROUPED
from prefrl.lm.generation import response_logprobs, sample, sample_with_logprobs
from prefrl.lm.lora import AdaptersOff
from prefrl.lm.policy_critic import PolicyAndCritic, rl_roles
from prefrl.lm.ppo_config import LMPPOConfig
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rollout import TokenRollout, draw_prompts, token_rollout
from prefrl.lm.scores import ScoreFn, adaptive_kl_coef, check_scores, dense_scores, segment_end_tokens
from prefrl.lm.sft import encode_sft
from prefrl.optim import adam, set_learning_rate
from prefrl.validation import require

if TYPE_CHECKING:
    from accelerate import Accelerator
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class LMPPOTrainer:
    """Policy, frozen reference, critic; one rollout + PPO update per ``train_iteration``.

    Args:
        policy: a transformers causal LM (trained in place).
        tokenizer: with EOS and a dedicated pad token.
        prompts: the prompts to sample from.
        reward_model: a :class:`ScalarRewardModel`, or ``reward_fn``: a plain Python function.
        critic: the value network (default: a copy of the reward model, else the policy's trunk with
            a zero head).
        reference: the frozen reference (default: a copy of ``policy`` as given).
        gold_fn: optional true preference, logged as ``lm/gold_score`` and never optimised.
        ptx_records: demonstrations ({"prompt", "completion"}) for PPO-ptx.
        observer: called with each iteration's (prompts, response texts) (this process's share);
            the metrics it returns are logged with the iteration's (e.g. a detector of a hack).
        accelerator: an ``accelerate.Accelerator`` for data parallelism: each rank samples and scores
            its share of every batch, the batch is gathered, minibatches are split over the ranks
            (see lm/distributed.py); the same update as one process on the same global batch.
        parallel: how the processes share policy and critic (:data:`distributed.Parallel`).
        mixed_precision: "bf16" runs sampling, scoring and training forwards under bf16 autocast
            (:data:`distributed.MixedPrecision`).
    """

    def __init__(
        self,
        policy: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        prompts: list[str],
        config: LMPPOConfig,
        reward_model: ScalarRewardModel | None = None,
        reward_fn: ScoreFn | None = None,
        critic: ScalarRewardModel | None = None,
        reference: PreTrainedModel | AdaptersOff | None = None,
        gold_fn: ScoreFn | None = None,
        ptx_records: list[dict[str, Any]] | None = None,
        accelerator: Accelerator | None = None,
        parallel: distributed.Parallel = "ddp",
        mixed_precision: distributed.MixedPrecision = "no",
        grad_accum_steps: int = 1,
        observer: Callable[[list[str], list[str]], dict[str, float]] | None = None,
    ) -> None:
        check_tokenizer(tokenizer)
        require(
            grad_accum_steps == 1,
            "PPO's unit of memory is its minibatch: lower --minibatch-size, not --grad-accum-steps",
        )
        require(
            (reward_model is None) != (reward_fn is None), "give exactly one of reward_model and reward_fn"
        )
        require(
            config.ptx_coef == 0 or bool(ptx_records), "ptx_coef > 0 needs demonstrations: pass ptx_records"
        )
        self.config, self.tokenizer, self.prompts = config, tokenizer, list(prompts)
        self.prompt_ids = encode(tokenizer, self.prompts)
        check_lengths(self.prompt_ids, config.max_new_tokens, context_length(policy))
        self.policy, self.reward_model = policy, reward_model
        self.reward_fn, self.gold_fn = reward_fn, gold_fn
        require(
            config.reward_level == "sequence" or reward_fn is not None,
            f"reward_level {config.reward_level} needs a reward function (--reward-fn): reward models score "
            "whole responses",
        )
        self.segment_ends = (
            segment_end_tokens(tokenizer, config.segment_end) if config.reward_level == "segment" else None
        )
        self.reference, self.critic = rl_roles(policy, reward_model, critic, reference, config.has_critic)
        self.model = PolicyAndCritic(self.policy, self.critic)
        self._distribute(accelerator, parallel, mixed_precision)
        self.ptx = encode_sft(tokenizer, ptx_records) if ptx_records else None
        self.kl_coef = config.kl_coef
        self.observer = observer
        self.last_samples: tuple[list[str], list[str]] = ([], [])
        self.iteration = 0
        self.rng = random.Random()
        """Prompt and demonstration draws: the same on every rank."""
        self.generator = torch.Generator(device=self.device)
        """Sampling: seeded by rank (each rank samples its own share)."""
        self.shuffle_generator = torch.Generator()
        """Minibatch order: the same on every rank."""
        self.reseed()

    def _distribute(
        self,
        accelerator: Accelerator | None,
        parallel: distributed.Parallel,
        mixed_precision: distributed.MixedPrecision,
    ) -> None:
        """Share policy and critic over the processes (``parallel``), build the optimizer, and put the
        frozen models on the device the batches go to."""
        config = self.config
        _, world = distributed.rank_and_world(accelerator)
        require(
            config.batch_size % world == 0 and config.minibatch_size % world == 0,
            f"batch_size {config.batch_size} and minibatch_size {config.minibatch_size} must split over "
            f"{world} processes: make both multiples of {world}",
        )
        self.accelerator = accelerator
        make_optimizer = partial(adam, lr=config.learning_rate, eps=config.adam_eps)
        self.forward_model, self.optimizer = distributed.prepare(
            accelerator,
            self.model,
            make_optimizer,
            parallel,
            units=tuple(u for u in (self.policy, self.critic) if u is not None),
            mixed_precision=mixed_precision,
        )
        self.sharded = distributed.is_sharded(self.model)
        """Parameters split over the ranks (FSDP, ZeRO-3): every forward is collective."""
        if self.sharded and parallel == "fsdp" and self.critic is not None:  # read by this, not forward
            distributed.register_forward_method(self.critic, "response_values")
        self.device = distributed.device_of(accelerator, self.policy)
        """Where batches go; the frozen models follow the policy there."""
        self.autocast = distributed.autocast(self.device, mixed_precision)
        for frozen in (self.reference, self.reward_model):
            if frozen is not None:
                frozen.to(self.device)

    def reseed(self) -> None:
        """Reset every random stream to the run's seed (sampling: offset by the rank)."""
        self.rng.seed(self.config.seed)
        self.generator.manual_seed(distributed.rank_seed(self.config.seed, self.accelerator))
        self.shuffle_generator.manual_seed(self.config.seed)

    @property
    def global_step(self) -> int:
        """Responses sampled so far."""
        return self.iteration * self.config.batch_size

    @property
    def done(self) -> bool:
        return self.iteration >= self.config.num_iterations

    def train_iteration(self) -> dict[str, float]:
        with self.autocast():
            rollout = self.rollout()
        start = time.perf_counter()
        lr = self.config.learning_rate * self.config.schedule.factor(
            self.iteration, self.config.num_iterations
        )
        set_learning_rate(self.optimizer, lr)
        metrics = self.update(rollout)
        metrics["lm/learning_rate"] = lr
        metrics["time/update_s"] = time.perf_counter() - start
        if self.config.adaptive_kl:
            self.kl_coef = adaptive_kl_coef(
                self.kl_coef,
                rollout.metrics["lm/kl"],
                self.config.kl_target,
                self.config.kl_horizon,
                self.config.batch_size,
            )
        self.iteration += 1
        metrics.update(rollout.metrics)
        if self.observer is not None:
            metrics.update(self.observer(*self.last_samples))
        total = metrics["time/generate_s"] + metrics["time/score_s"] + metrics["time/update_s"]
        metrics["time/tokens_per_second"] = (
            rollout.metrics["lm/response_length"] * self.config.batch_size / total
        )
        return metrics

    def decode(self, responses: torch.Tensor, mask: torch.Tensor) -> list[str]:
        """Response texts without EOS and padding."""
        keep = mask & (responses != self.tokenizer.eos_token_id)
        ids = torch.where(keep, responses, torch.full_like(responses, self.tokenizer.pad_token_id))
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True)

    @torch.no_grad()
    def generate(self, prompts: list[str], generator: torch.Generator | None = None) -> list[str]:
        """Sample one response per prompt with the current policy (texts)."""
        p_ids, p_mask = (
            t.to(self.device) for t in left_pad(encode(self.tokenizer, prompts), self.tokenizer.pad_token_id)
        )
        with self.autocast():
            responses, mask = sample(
                self.policy,
                p_ids,
                p_mask,
                self.config.max_new_tokens,
                self.tokenizer.eos_token_id,
                self.tokenizer.pad_token_id,
                self.config.temperature,
                generator or self.generator,
            )
        return self.decode(responses, mask)

    @torch.no_grad()
    def score(self, prompts: list[str], texts: list[str], batch: Batch) -> dict[str, torch.Tensor]:
        """{"scores": (B,) proxy scores} (the reward model read at the last real token, or the reward
        function), and at the segment/token level {"dense": (B, R) rewards, "scores": their sums}."""
        if self.reward_model is not None:
            return {"scores": self.reward_model(batch).float()}
        assert self.reward_fn is not None
        raw = self.reward_fn(prompts, texts)
        level = self.config.reward_level
        if level == "sequence":
            return {"scores": check_scores(raw, len(texts)).to(self.device)}
        responses = batch.input_ids[:, batch.prompt_length :]
        dense = dense_scores(
            raw, responses, batch.response_mask, self.tokenizer.eos_token_id, level, self.segment_ends
        )
        return {"dense": dense, "scores": dense.sum(1)}

    @torch.no_grad()
    def rollout(self) -> TokenRollout:
        """Sample, score and turn into (B, R) rewards, advantages and returns (token_mdp)."""
        start = time.perf_counter()
        prompts, batch, logprobs = self.sample_responses()
        generate_s = time.perf_counter() - start
        start = time.perf_counter()
        batch, parts = self.evaluate_responses(
            prompts, batch, None if self.config.recompute_logprobs else logprobs
        )
        rollout = token_rollout(self.config, self.kl_coef, self.tokenizer.eos_token_id, batch, parts)
        rollout.metrics["time/generate_s"] = generate_s
        rollout.metrics["time/score_s"] = time.perf_counter() - start
        return rollout

    def sample_responses(self) -> tuple[list[str], Batch, torch.Tensor]:
        """This rank's share of ``batch_size`` prompts drawn at random (each ``group_size`` times in a
        row for rloo and grpo), the policy's sampled responses to them (a (B, P + R) batch) and their
        (B, R) log-probs at sampling."""
        cfg, tok = self.config, self.tokenizer
        k = cfg.group_size if cfg.estimator in GROUPED else 1
        indices = draw_prompts(self.rng, len(self.prompts), cfg.batch_size, k)
        indices = indices[distributed.chunk(cfg.batch_size, self.accelerator)]  # this rank's share
        p_ids, p_mask = left_pad([self.prompt_ids[i] for i in indices], tok.pad_token_id)
        p_ids, p_mask = p_ids.to(self.device), p_mask.to(self.device)
        responses, mask, logprobs = sample_with_logprobs(
            self.policy,
            p_ids,
            p_mask,
            cfg.max_new_tokens,
            tok.eos_token_id,
            tok.pad_token_id,
            cfg.temperature,
            self.generator,
            synced=self.sharded,
        )
        return (
            [self.prompts[i] for i in indices],
            batch_from_tensors(p_ids, p_mask, responses, mask),
            logprobs,
        )

    def evaluate_responses(
        self, prompts: list[str], batch: Batch, logprobs: torch.Tensor | None = None
    ) -> tuple[Batch, dict[str, torch.Tensor]]:
        """The responses' (B, R) log-probs under policy (``logprobs`` when given: the sampling pass's;
        else recomputed) and reference, values, (B,) scores (and gold scores), gathered from every
        rank: (the whole batch, its parts)."""
        cfg = self.config
        responses = batch.input_ids[:, batch.prompt_length :]
        texts = self.decode(responses, batch.response_mask)
        self.last_samples = (prompts, texts)
        parts = {
            "logprobs": logprobs
            if logprobs is not None
            else response_logprobs(self.policy, batch, cfg.temperature),
            "ref_logprobs": response_logprobs(self.reference, batch, cfg.temperature),
            "values": (
                self.critic.response_values(batch)
                if self.critic is not None
                else torch.zeros(batch.response_mask.shape, device=self.device)
            ),
            **self.score(prompts, texts, batch),
        }
        if self.gold_fn is not None:
            gold = check_scores(self.gold_fn(prompts, texts), len(texts), "gold function")
            parts["gold"] = gold.to(self.device)
        p_ids, p_mask = (
            batch.input_ids[:, : batch.prompt_length],
            batch.attention_mask[:, : batch.prompt_length],
        )
        return distributed.gather_rollout(
            self.accelerator,
            self.tokenizer.pad_token_id,
            p_ids,
            p_mask,
            responses,
            batch.response_mask,
            parts,
        )

    def update(self, rollout: TokenRollout) -> dict[str, float]:
        """``update_epochs`` passes of clipped PPO over shuffled minibatches (:mod:`prefrl.lm.ppo_update`)."""
        return ppo_update.update(self, rollout)

    def state_dict(self) -> dict[str, Any]:
        """Whole tensors; collective for a sharded model or under ZeRO (rank 0 gets them)."""
        model, optimizer = distributed.full_state(self.model, self.optimizer)
        parts = {
            p: {k[len(p) + 1 :]: v for k, v in model.items() if k.startswith(p + ".")}
            for p in self.model.parts
        }
        return {
            **parts,
            "optimizer": optimizer,
            "kl_coef": self.kl_coef,
            "iteration": self.iteration,
            "rng": self.rng.getstate(),
            "generator": self.generator.get_state(),
            "shuffle_generator": self.shuffle_generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        model = {f"{p}.{k}": v for p in self.model.parts for k, v in state[p].items()}
        distributed.load_full_state(self.model, self.optimizer, model, state["optimizer"])
        self.kl_coef = float(state["kl_coef"])
        self.iteration = int(state["iteration"])
        self.rng.setstate(state["rng"])
        self.generator.set_state(state["generator"])
        rank, _ = distributed.rank_and_world(self.accelerator)
        if rank > 0:  # the checkpoint holds rank 0's sampling stream: the others start their own
            self.generator.manual_seed(self.config.seed + rank + 100_003 * self.iteration)
        if "shuffle_generator" in state:  # checkpoints before data-parallel PPO had one generator
            self.shuffle_generator.set_state(state["shuffle_generator"])
