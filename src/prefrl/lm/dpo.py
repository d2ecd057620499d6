"""Direct preference optimisation (Rafailov et al. 2023): the Bradley-Terry model of the preference
data optimised on the policy itself, no reward model, no sampling. The policy's implied reward of an
answer is beta * (log pi(y | x) - log pi_ref(y | x)); the loss is the codebase's one Bradley-Terry
loss (:func:`prefrl.reward_model.bradley_terry.bradley_terry_loss`) of chosen over rejected.

Variants one line away: conservative DPO (``label_smoothing`` eps: the labels are 1 - eps, the
answers assumed flipped with probability eps) and IPO (Azar et al. 2023: the squared distance of the
log-ratio margin from 1 / (2 beta), which does not drive the margin to infinity).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
import tyro

from prefrl.lm import distributed
from prefrl.lm.data import batch_order, check_tokenizer, context_length
from prefrl.lm.generation import response_logprobs
from prefrl.lm.lora import AdaptersOff
from prefrl.lm.reward_model import disable_dropout
from prefrl.lm.rm_training import ranking_batch, tokenize_rankings
from prefrl.lm.steps import SupervisedSteps
from prefrl.optim import LRSchedule
from prefrl.reward_model.bradley_terry import bradley_terry_loss
from prefrl.validation import require, require_positive, validation_enabled

if TYPE_CHECKING:
    from accelerate import Accelerator
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Loss = Literal["sigmoid", "ipo"]


@dataclass(frozen=True)
class DPOConfig:
    beta: float = 0.1
    """Strength of the KL regularisation toward the reference (the implied reward's scale)."""
    loss: Loss = "sigmoid"
    """sigmoid: DPO's Bradley-Terry loss; ipo: IPO's squared loss."""
    label_smoothing: float = 0.0
    """Conservative DPO: the share of answers assumed flipped (labels 1 - eps); sigmoid loss only."""
    learning_rate: float = 1e-3
    """Adam learning rate (for the tiny model trained from scratch; ~5e-7 for a pretrained one)."""
    schedule: Annotated[LRSchedule, tyro.conf.arg(name="")] = field(default_factory=LRSchedule)
    """Warmup and decay of the learning rate."""
    batch_size: int = 32
    """Comparisons per step."""
    num_epochs: float = 3.0
    """Passes over the comparisons."""
    seed: int = 1
    """Seed of the run (data order)."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        require_positive("beta", self.beta)
        require(
            0.0 <= self.label_smoothing < 0.5,
            f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}: fix --label-smoothing",
        )
        require(
            self.loss == "sigmoid" or self.label_smoothing == 0,
            "label_smoothing is conservative DPO's, for --loss sigmoid: drop --label-smoothing",
        )
        require_positive("learning_rate", self.learning_rate)
        self.schedule.validate()
        require_positive("batch_size", self.batch_size)
        require_positive("num_epochs", self.num_epochs)


def dpo_loss(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
    loss: Loss = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(B,) sequence log-probs of the chosen and rejected answers under the policy and the reference ->
    the loss and detached statistics: ``accuracy`` (chosen's implied reward higher), ``margin``
    (mean implied-reward difference), ``chosen_reward``, ``rejected_reward``."""
    chosen = beta * (chosen_logps - ref_chosen_logps)
    rejected = beta * (rejected_logps - ref_rejected_logps)
    if loss == "sigmoid":
        labels = torch.full_like(chosen, 1.0 - label_smoothing)
        value, stats = bradley_terry_loss(chosen, rejected, labels)
    else:
        log_ratio_margin = (chosen - rejected) / beta
        value = ((log_ratio_margin - 1.0 / (2.0 * beta)) ** 2).mean()
        stats = {"accuracy": (chosen > rejected).float().mean()}
    with torch.no_grad():
        extra = {
            "margin": (chosen - rejected).mean(),
            "chosen_reward": chosen.mean(),
            "rejected_reward": rejected.mean(),
        }
    return value, {"accuracy": stats["accuracy"], **extra}


class DPOTrainer(SupervisedSteps):
    """One minibatch of comparisons per ``train_iteration``. The reference (default: a frozen copy of
    the policy as given) scores every answer once, at the start; only the policy runs while training.

    Args:
        policy: a transformers causal LM (trained in place).
        records: {"prompt", "chosen", "rejected"} comparisons.
        accelerator, parallel, mixed_precision: data parallelism as for SFT (lm/distributed.py).
    """

    def __init__(
        self,
        policy: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        records: list[dict[str, Any]],
        config: DPOConfig,
        reference: PreTrainedModel | AdaptersOff | None = None,
        accelerator: Accelerator | None = None,
        parallel: distributed.Parallel = "ddp",
        mixed_precision: distributed.MixedPrecision = "no",
        grad_accum_steps: int = 1,
    ) -> None:
        check_tokenizer(tokenizer)
        require(
            all("chosen" in r and "rejected" in r for r in records),
            "DPO learns from comparisons: give records with 'prompt', 'chosen' and 'rejected'",
        )
        self.model, self.tokenizer, self.config = policy, tokenizer, config
        self.prompt_ids, self.answer_ids = tokenize_rankings(tokenizer, records)
        self.lengths = [
            len(p) + max(map(len, a)) for p, a in zip(self.prompt_ids, self.answer_ids, strict=True)
        ]
        context = context_length(policy)
        require(
            max(self.lengths) <= context,
            f"a prompt with its longest answer is {max(self.lengths)} tokens (EOS included), more than "
            f"the model's context of {context}: shorten or drop the longest prompts and answers",
        )
        disable_dropout(policy)
        num_steps = max(1, math.ceil(config.num_epochs * len(records) / config.batch_size))
        super().__init__(
            policy, config.learning_rate, config.batch_size, num_steps, config.seed,
            accelerator, parallel, mixed_precision, config.schedule,
            grad_accum_steps,
        )  # fmt: skip
        self.reference = reference if reference is not None else copy.deepcopy(policy)
        self.reference.requires_grad_(False).eval().to(self.device)
        self.reference_logps = self.reference_scores(self.reference)
        """(N, 2) the reference's log-probs of each record's chosen and rejected answer."""

    def epoch_order(self) -> list[int]:
        return batch_order(self.rng, self.lengths, self.config.batch_size, False)

    def sequence_logps(self, model: torch.nn.Module, indices: list[int]) -> torch.Tensor:
        """(B, 2) summed log-probs of the chosen and the rejected answer of records ``indices``."""
        batch = ranking_batch(self.prompt_ids, self.answer_ids, indices, self.tokenizer.pad_token_id)
        batch = batch.to(self.device)
        logps = response_logprobs(model, batch)
        return torch.where(batch.response_mask, logps, torch.zeros_like(logps)).sum(1).view(-1, 2)

    @torch.no_grad()
    def reference_scores(self, reference: torch.nn.Module, chunk: int = 64) -> torch.Tensor:
        """Every record's (chosen, rejected) log-probs under the frozen reference, in chunks."""
        indices = list(range(len(self.prompt_ids)))
        with self.autocast():
            parts = [
                self.sequence_logps(reference, indices[i : i + chunk]) for i in range(0, len(indices), chunk)
            ]
        return torch.cat(parts).float()

    @torch.no_grad()
    def accuracy(self, records: list[dict[str, Any]], chunk: int = 64) -> float:
        """Share of ``records`` (held-out comparisons) whose chosen answer has the higher implied
        reward under the policy as it is now."""
        prompts, answers = tokenize_rankings(self.tokenizer, records)
        pad, right = self.tokenizer.pad_token_id, 0
        self.model.eval()
        for start in range(0, len(records), chunk):
            indices = list(range(start, min(start + chunk, len(records))))
            batch = ranking_batch(prompts, answers, indices, pad).to(self.device)
            margins = []
            for model in (self.model, self.reference):
                logps = response_logprobs(model, batch)
                margins.append(torch.where(batch.response_mask, logps, 0.0).sum(1).view(-1, 2))
            implied = margins[0] - margins[1]
            right += int((implied[:, 0] > implied[:, 1]).sum())
        return right / len(records)

    def train_iteration(self) -> dict[str, float]:
        """One step on this rank's equal share of the global batch (mean of shard means = global mean)."""
        lr = self.scheduled_learning_rate()
        self.model.train()
        indices = distributed.shard(self.next_indices(), self.accelerator)
        cfg = self.config

        def loss_of(part: list[int], share: float) -> tuple[torch.Tensor, dict[str, Any]]:
            with self.autocast():
                logps = self.sequence_logps(self.forward_model, part)
            ref = self.reference_logps[part]
            loss, stats = dpo_loss(
                logps[:, 0], logps[:, 1], ref[:, 0], ref[:, 1], cfg.beta, cfg.loss, cfg.label_smoothing
            )
            names = {"accuracy": "dpo_accuracy", "margin": "dpo_margin", "chosen_reward": "chosen_reward",
                     "rejected_reward": "rejected_reward"}  # fmt: skip
            scaled = {f"lm/{names[k]}": v * share for k, v in stats.items()}
            return loss * share, {"lm/dpo_loss": loss.detach() * share, **scaled}

        stats = self.step_on(indices, loss_of)
        self.step += 1
        return {"lm/learning_rate": lr, **stats}
