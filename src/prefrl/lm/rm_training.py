"""Training the language reward model: the loss is
:func:`prefrl.reward_model.bradley_terry.bradley_terry_loss`, the one the gymnasium side uses, on the
scores of chosen and rejected responses (optional margin), or on all C(K, 2) pairs of a K-way ranking
of one prompt (InstructGPT), each answer forwarded once; the comparison data, the held-out accuracy
and the shift that makes reference answers score 0."""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
import tyro

from prefrl.lm import distributed
from prefrl.lm.data import (
    Batch,
    batch_order,
    check_tokenizer,
    context_length,
    encode,
    length_chunks,
    make_batch,
    response_batch,
    shared_prompt_batch,
)
from prefrl.lm.records import record_answers, store_answer_kind, store_path
from prefrl.lm.reward_model import ScalarRewardModel, disable_dropout
from prefrl.lm.steps import SupervisedSteps
from prefrl.optim import LRSchedule
from prefrl.reward_model.bradley_terry import bradley_terry_loss
from prefrl.reward_model.ratings import DEFAULT_SHARPNESS, rating_loss
from prefrl.validation import require, require_positive, validation_enabled

if TYPE_CHECKING:
    from accelerate import Accelerator
    from transformers import PreTrainedTokenizerBase


NEAR_CHANCE = 0.6
"""Held-out accuracy below which a reward model is warned about before PPO optimises it."""


def split_held_out(
    records: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held out): a seeded ``fraction`` of the records held out (none below 20 records)."""
    if fraction <= 0 or len(records) < 20:
        return records, []
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    num = max(1, round(fraction * len(records)))
    return [records[i] for i in order[num:]], [records[i] for i in order[:num]]


def pairwise_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, margin: float = 0.0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """-log sigmoid(r_chosen - r_rejected - margin), averaged; (B,) scores each."""
    return bradley_terry_loss(chosen, rejected, torch.ones_like(chosen), margin=margin)


def ranking_pairs(num_answers: int) -> tuple[list[int], list[int]]:
    """Indices (better, worse) of all C(K, 2) pairs of K answers ranked best first."""
    pairs = list(itertools.combinations(range(num_answers), 2))
    return [i for i, _ in pairs], [j for _, j in pairs]


def kway_loss(scores: torch.Tensor, margin: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """InstructGPT's loss: (B, K) scores of K answers per prompt, best first -> the Bradley-Terry loss
    averaged over all C(K, 2) pairs of each prompt, then over prompts."""
    better, worse = ranking_pairs(scores.shape[1])
    return pairwise_loss(scores[:, better].reshape(-1), scores[:, worse].reshape(-1), margin)


@dataclass(frozen=True)
class RMConfig:
    learning_rate: float = 1e-3
    """Adam learning rate (1e-3 for the tiny model; ~3e-6 for a pretrained one, as in N+)."""
    schedule: Annotated[LRSchedule, tyro.conf.arg(name="")] = field(default_factory=LRSchedule)
    """Warmup and decay of the learning rate."""
    batch_size: int = 32
    """Prompts (comparisons or rankings) per step."""
    num_epochs: float = 1.0
    """Passes over the comparisons (InstructGPT: 1; more overfits)."""
    margin: float = 0.0
    """Subtracted from r_chosen - r_rejected in the loss (a preference-strength margin)."""
    rating_classes: int | None = None
    """Ratings of single answers: points of the scale (None: one more than the highest rating)."""
    rating_sharpness: float = DEFAULT_SHARPNESS
    """Ratings: k of the rating likelihood (``reward_model/ratings.py``)."""
    disable_dropout: bool = True
    """Turn dropout off in the reward model while it trains (TRL's default too)."""
    group_by_length: bool = False
    """Batch comparisons of similar length together: less padding, 1.35x faster on 4000 pairs at equal
    accuracy, but on a few hundred pairs it cost 0.2 of held-out accuracy here; off by default."""
    length_chunks: int = 4
    """Each step's sequences are sorted by length and forwarded in this many chunks, each padded to
    its own longest: less padding, the same scores and gradients (1: one padded batch)."""
    share_prompts: bool = True
    """Forward each prompt once and reuse its keys and values (KV cache) for all of its answers,
    instead of forwarding it with each answer: the same scores and gradients, fewer tokens (the
    more so the longer the prompts)."""
    seed: int = 1
    """Seed of the run (shuffling)."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        require_positive("length_chunks", self.length_chunks)
        require_positive("learning_rate", self.learning_rate)
        self.schedule.validate()
        require_positive("batch_size", self.batch_size)
        require_positive("num_epochs", self.num_epochs)


def ranked_answers(records: list[dict[str, Any]]) -> list[list[str]]:
    """Each record's answers best first: [chosen, rejected], a ranking's completions (same K), or a
    rated record's one completion."""
    answers = [record_answers(r) for r in records]
    sizes = {len(a) for a in answers}
    require(len(sizes) == 1, f"rankings have {sorted(sizes)} answers: give every prompt the same number")
    return answers


def tokenize_rankings(
    tokenizer: PreTrainedTokenizerBase, records: list[dict[str, Any]]
) -> tuple[list[list[int]], list[list[list[int]]]]:
    """(prompt ids per record, K answers' ids + EOS per record), tokenized in one call each."""
    answers = ranked_answers(records)
    num_answers = len(answers[0])
    prompts = encode(tokenizer, [r["prompt"] for r in records])
    flat = encode(tokenizer, [text for ranked in answers for text in ranked])
    eos = tokenizer.eos_token_id
    responses = [[[*flat[i * num_answers + k], eos] for k in range(num_answers)] for i in range(len(records))]
    return prompts, responses


def ranking_batch(
    prompts: list[list[int]], responses: list[list[list[int]]], indices: list[int], pad_id: int
) -> Batch:
    """One (B * K, L) batch, the K answers of each prompt adjacent."""
    prompt_ids = [prompts[i] for i in indices for _ in responses[i]]
    response_ids = [answer for i in indices for answer in responses[i]]
    return make_batch(prompt_ids, response_ids, pad_id)


def encode_rankings(
    tokenizer: PreTrainedTokenizerBase, records: list[dict[str, Any]], indices: list[int]
) -> Batch:
    """The batch of records ``indices`` straight from text."""
    prompts, responses = tokenize_rankings(tokenizer, [records[i] for i in indices])
    return ranking_batch(prompts, responses, list(range(len(indices))), tokenizer.pad_token_id)


class RMTrainer(SupervisedSteps):
    """Fits a :class:`ScalarRewardModel` to comparisons or K-way rankings, one minibatch per
    ``train_iteration``."""

    def __init__(
        self,
        model: ScalarRewardModel,
        tokenizer: PreTrainedTokenizerBase,
        records: list[dict[str, Any]],
        config: RMConfig,
        accelerator: Accelerator | None = None,
        parallel: distributed.Parallel = "ddp",
        mixed_precision: distributed.MixedPrecision = "no",
        grad_accum_steps: int = 1,
    ) -> None:
        """``accelerator``: an ``accelerate.Accelerator`` for data parallelism, shared as
        ``parallel`` says (lm/distributed.py)."""
        check_tokenizer(tokenizer)
        self.model, self.tokenizer, self.records, self.config = model, tokenizer, records, config
        self.num_answers = len(ranked_answers(records)[0])
        self.ratings = torch.tensor([r["rating"] for r in records]) if "rating" in records[0] else None
        """(N,) the ratings of single answers (rating records), else None."""
        self.rating_classes = 0
        if self.ratings is not None:
            self.rating_classes = config.rating_classes or int(self.ratings.max()) + 1
            require(
                self.rating_classes >= 2 and int(self.ratings.max()) < self.rating_classes,
                f"ratings run 0 to {int(self.ratings.max())} on a scale of {self.rating_classes} points: "
                "fix --rating-classes (or rate on at least two points)",
            )
        self.prompt_ids, self.response_ids = tokenize_rankings(tokenizer, records)
        self.lengths = [
            len(p) + max(len(a) for a in r) for p, r in zip(self.prompt_ids, self.response_ids, strict=True)
        ]
        context = context_length(model.backbone)
        require(
            max(self.lengths) <= context,
            f"a prompt with its longest answer is {max(self.lengths)} tokens (EOS included), more than "
            f"the model's context of {context}: shorten or drop the longest prompts and answers",
        )
        if config.disable_dropout:
            disable_dropout(model)
        num_steps = max(1, math.ceil(config.num_epochs * len(records) / config.batch_size))
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
        """Whole batches only (they split over ranks); grouped by length with ``group_by_length``."""
        return batch_order(self.rng, self.lengths, self.config.batch_size, self.config.group_by_length)

    def scores(self, indices: list[int], model: Any | None = None) -> torch.Tensor:
        """(B, K) scores of the answers of records ``indices``, best first. The B * K answers are
        forwarded in ``config.length_chunks`` chunks of similar length (less padding, same scores),
        after their B prompts (``config.share_prompts``) or each with its prompt. A sharded model
        gets one padded batch: FSDP2 (and ZeRO-3) gather each block once per forward call, for one
        backward."""
        rows = [row for row in range(len(indices)) for _ in range(self.num_answers)]
        answers = [answer for i in indices for answer in self.response_ids[i]]
        pad, share = self.tokenizer.pad_token_id, self.config.share_prompts and not self.sharded
        prompts = [self.prompt_ids[i] for i in indices]
        lengths = [len(answers[j]) + (0 if share else len(prompts[rows[j]])) for j in range(len(answers))]
        chunks = length_chunks(lengths, 1 if self.sharded else self.config.length_chunks)
        if share:
            batch: Any = shared_prompt_batch(prompts, rows, answers, chunks, pad).to(self.device)
        else:
            batch = [
                make_batch([prompts[rows[j]] for j in c], [answers[j] for j in c], pad).to(self.device)
                for c in chunks
            ]
        sorted_scores = (model or self.model)(batch)
        scores = torch.empty_like(sorted_scores)
        scores[torch.tensor([j for chunk in chunks for j in chunk], device=scores.device)] = sorted_scores
        return scores.view(len(indices), self.num_answers)

    def train_iteration(self) -> dict[str, float]:
        """One step on this rank's equal share of the global batch (mean of shard means = global mean)."""
        lr = self.scheduled_learning_rate()
        self.model.train()
        indices = distributed.shard(self.next_indices(), self.accelerator)

        def loss_of(part: list[int], share: float) -> tuple[torch.Tensor, dict[str, Any]]:
            with self.autocast():
                scores = self.scores(part, self.forward_model)
            if self.ratings is not None:  # one answer per record, scored on the rating scale
                rated = self.ratings[part].to(scores.device)
                cfg = self.config
                loss, stats = rating_loss(
                    scores.view(-1).float(), rated, self.rating_classes, cfg.rating_sharpness
                )
            else:
                loss, stats = kway_loss(scores, self.config.margin)
            return loss * share, {
                "lm/rm_loss": loss.detach() * share,
                "lm/rm_accuracy": stats["accuracy"] * share,
            }

        stats = self.step_on(indices, loss_of)
        self.step += 1
        return {"lm/learning_rate": lr, **stats}


@torch.no_grad()
def evaluate_rm(
    model: ScalarRewardModel,
    tokenizer: PreTrainedTokenizerBase,
    records: list[dict[str, Any]],
    batch_size: int = 64,
) -> float:
    """Share of held-out pairs (all C(K, 2) pairs of rankings; for ratings, the pairs of answers
    rated differently) ordered as labelled."""
    model.eval()
    if "rating" in records[0]:
        return _rating_order_accuracy(model, tokenizer, records, batch_size)
    num_answers = len(ranked_answers(records)[0])
    better, worse = ranking_pairs(num_answers)
    right = total = 0
    for start in range(0, len(records), batch_size):
        indices = list(range(start, min(start + batch_size, len(records))))
        batch = encode_rankings(tokenizer, records, indices).to(model.head.weight.device)
        scores = model(batch).view(len(indices), num_answers)
        right += int((scores[:, better] > scores[:, worse]).sum())
        total += len(indices) * len(better)
    return right / max(total, 1)


def _rating_order_accuracy(
    model: ScalarRewardModel,
    tokenizer: PreTrainedTokenizerBase,
    records: list[dict[str, Any]],
    batch_size: int,
) -> float:
    """Share of the pairs of rated answers with different ratings whose scores are in that order."""
    scores = torch.cat([
        model(encode_rankings(tokenizer, records, list(range(start, min(start + batch_size, len(records)))))
              .to(model.head.weight.device)).view(-1).float().cpu()
        for start in range(0, len(records), batch_size)
    ])  # fmt: skip
    ratings = torch.tensor([r["rating"] for r in records], dtype=torch.float32)
    apart = ratings[:, None] != ratings[None, :]
    agree = ((scores[:, None] - scores[None, :]) * (ratings[:, None] - ratings[None, :])) > 0
    return float((agree & apart).sum() / apart.sum().clamp_min(1))


def answer_kind(source: str) -> Literal["preference", "ranking", "rating"]:
    """What a source holds: K-way rankings ({"prompt", "completions"}), ratings of single answers
    ({"prompt", "completion", "rating"}) or comparisons: by a .jsonl file's first record, or by what
    people gave in a preference store (a run directory of `prefrl lm pairs`)."""
    path = Path(source)
    found = store_path(path)
    if found is not None and found.is_file():
        return store_answer_kind(found)
    if path.suffix == ".jsonl" and path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    first = json.loads(line)
                except json.JSONDecodeError:
                    return "preference"
                return (
                    "ranking" if "completions" in first else "rating" if "rating" in first else "preference"
                )
    return "preference"


@torch.no_grad()
def shift_to_first_answers(
    model: ScalarRewardModel, tokenizer: PreTrainedTokenizerBase, records: list[dict[str, Any]]
) -> None:
    """Shift the RM so the preferred (reference) answers of ``records`` score 0 on average."""

    model.eval()
    firsts = [record_answers(r)[0] for r in records]
    scores = [
        model(
            response_batch(tokenizer, [r["prompt"] for r in records[i : i + 64]], firsts[i : i + 64]).to(
                model.head.weight.device
            )
        )
        for i in range(0, len(records), 64)
    ]
    model.shift_to(torch.cat(scores))
