"""Supervised fine-tuning: next-token loss on the response tokens only (prompt and padding ignored)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import torch
import torch.nn.functional as F
import tyro

from prefrl.lm import distributed
from prefrl.lm.data import Batch, check_lengths, check_tokenizer, context_length, encode, make_batch
from prefrl.lm.steps import SupervisedSteps
from prefrl.masked import masked_mean
from prefrl.optim import LRSchedule
from prefrl.validation import require, require_positive, validation_enabled

if TYPE_CHECKING:
    from accelerate import Accelerator
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class SFTConfig:
    learning_rate: float = 3e-3
    """Adam learning rate (3e-3 for a tiny model trained from scratch; ~1e-5 for a pretrained one)."""
    schedule: Annotated[LRSchedule, tyro.conf.arg(name="")] = field(default_factory=LRSchedule)
    """Warmup and decay of the learning rate."""
    batch_size: int = 32
    """Demonstrations per step."""
    num_epochs: float = 3.0
    """Passes over the demonstrations."""
    max_new_tokens: int = 32
    """Longest response (tokens, EOS included) accepted; longer ones are an error."""
    seed: int = 1
    """Seed of the run (shuffling, initialisation)."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        require_positive("learning_rate", self.learning_rate)
        self.schedule.validate()
        require_positive("batch_size", self.batch_size)
        require_positive("num_epochs", self.num_epochs)
        require(self.max_new_tokens >= 1, "max_new_tokens must be >= 1: fix --max-new-tokens")


def sft_loss(
    logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor, num_tokens: float | None = None
) -> torch.Tensor:
    """Mean next-token cross-entropy over the True entries of ``mask``.

    Args:
        logits: (B, R, V) logits predicting ``tokens``; tokens: (B, R); mask: (B, R) bool.
        num_tokens: divide the summed loss by this instead (the global batch's token count under data
            parallelism, times the number of processes, since DDP averages gradients).
    """
    nll = F.cross_entropy(logits.float().transpose(1, 2), tokens, reduction="none")
    if num_tokens is None:
        return masked_mean(nll, mask)
    return torch.where(mask, nll, torch.zeros_like(nll)).sum() / num_tokens


def encode_sft(
    tokenizer: PreTrainedTokenizerBase, records: list[dict[str, Any]]
) -> tuple[list[list[int]], list[list[int]]]:
    """(prompt ids, response ids + EOS) per record."""
    prompts = encode(tokenizer, [r["prompt"] for r in records])
    responses = [
        [*ids, tokenizer.eos_token_id] for ids in encode(tokenizer, [r["completion"] for r in records])
    ]
    return prompts, responses


class SFTTrainer(SupervisedSteps):
    """One minibatch per ``train_iteration``; ``done`` after ``num_epochs`` passes."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        records: list[dict[str, Any]],
        config: SFTConfig,
        accelerator: Accelerator | None = None,
        parallel: distributed.Parallel = "ddp",
        mixed_precision: distributed.MixedPrecision = "no",
        grad_accum_steps: int = 1,
    ) -> None:
        """``accelerator``: an ``accelerate.Accelerator`` for data parallelism, shared as
        ``parallel`` says (see lm/distributed.py)."""
        check_tokenizer(tokenizer)
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.prompts, self.responses = encode_sft(tokenizer, records)
        longest = max(len(r) for r in self.responses)
        require(
            longest <= config.max_new_tokens,
            f"a completion has {longest} tokens with EOS, more than max_new_tokens={config.max_new_tokens}: "
            "raise --max-new-tokens or shorten the completions",
        )
        check_lengths(self.prompts, longest, context_length(model))
        num_steps = max(1, int(config.num_epochs * len(records) / config.batch_size))
        super().__init__(
            model,
            config.learning_rate,
            config.batch_size,
            num_steps,
            config.seed,
            accelerator,
            parallel,
            mixed_precision,
            config.schedule,
            grad_accum_steps,
        )

    def epoch_order(self) -> list[int]:
        order = list(range(len(self.prompts)))
        self.rng.shuffle(order)
        return order

    def batch(self, indices: list[int]) -> Batch:
        return make_batch(
            [self.prompts[i] for i in indices],
            [self.responses[i] for i in indices],
            self.tokenizer.pad_token_id,
        )

    def train_iteration(self) -> dict[str, float]:
        """One step on this rank's share of the global batch; the loss is normalised by the global
        batch's response tokens, so the DDP-averaged gradient is the single-process one (and the
        parts of an accumulated step add up to it)."""
        lr = self.scheduled_learning_rate()
        self.model.train()
        indices = self.next_indices()
        _, world = distributed.rank_and_world(self.accelerator)
        num_tokens = sum(len(self.responses[i]) for i in indices) / world

        def loss_of(part: list[int], share: float) -> tuple[torch.Tensor, dict[str, Any]]:
            batch = self.batch(part).to(self.device)
            with self.autocast():
                out = self.forward_model(
                    input_ids=batch.input_ids,
                    attention_mask=batch.attention_mask.long(),
                    position_ids=batch.position_ids,
                )
            start, length = batch.prompt_length - 1, batch.response_mask.shape[1]
            logits = out.logits[:, start : start + length]
            responses = batch.input_ids[:, batch.prompt_length :]
            loss = sft_loss(logits, responses, batch.response_mask, num_tokens)
            return loss, {"lm/sft_loss": loss.detach()}

        stats = self.step_on(distributed.shard(indices, self.accelerator), loss_of)
        self.step += 1
        return {"lm/learning_rate": lr, **stats, "lm/sft_step": float(self.step)}
