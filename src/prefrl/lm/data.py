"""Tokenizers and batches for the language-model side (the records they come from: lm/records.py).

Batches: prompts are left-padded, responses right-padded after them, one (B, L) sequence
``[pad.. prompt | response pad..]`` with ``attention_mask`` (True = real token) and position ids that
skip the left padding. Pad is a dedicated token, never EOS.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def check_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """EOS present, a dedicated pad token (never pad = EOS), left padding."""
    if tokenizer.eos_token_id is None:
        raise ValueError(
            "the tokenizer has no EOS token, so responses could never end: add one with "
            "tokenizer.add_special_tokens({'eos_token': '<eos>'}) (and resize the model's embeddings)"
        )
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise ValueError(
            "the tokenizer's pad token is missing or equal to EOS (the model would never learn to "
            "stop): add a dedicated one with tokenizer.add_special_tokens({'pad_token': '<pad>'}) "
            "and model.resize_token_embeddings(len(tokenizer))"
        )
    tokenizer.padding_side = "left"


def encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def check_lengths(prompt_ids: Sequence[Sequence[int]], max_new_tokens: int, context: int) -> None:
    longest = max(len(p) for p in prompt_ids)
    if longest + max_new_tokens > context:
        raise ValueError(
            f"a prompt of {longest} tokens plus {max_new_tokens} response tokens exceeds the model's "
            f"context of {context}: shorten the prompts or lower --max-new-tokens"
        )


@dataclass(frozen=True)
class Batch:
    """input_ids (B, P + R); attention_mask (B, P + R) bool; position_ids (B, P + R);
    response_mask (B, R) bool over the response part; P = prompt_length."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    response_mask: torch.Tensor
    prompt_length: int

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with its tensors on ``device``."""
        return Batch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.position_ids.to(device),
            self.response_mask.to(device),
            self.prompt_length,
        )


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) positions that skip left padding (0 at the first real token)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ids (B, P), mask (B, P) bool, each row right-aligned."""
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), length, dtype=torch.bool)
    for i, s in enumerate(seqs):
        if s:
            ids[i, length - len(s) :] = torch.tensor(s)
            mask[i, length - len(s) :] = True
    return ids, mask


def right_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ids (B, R), mask (B, R) bool, each row left-aligned."""
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), length, dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = True
    return ids, mask


def make_batch(
    prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]], pad_id: int
) -> Batch:
    """Left-padded prompts followed by right-padded responses (pass responses with their EOS)."""
    return batch_from_tensors(*left_pad(prompt_ids, pad_id), *right_pad(response_ids, pad_id))


@dataclass(frozen=True)
class AnswerChunk:
    """Answers of similar length: rows (n,) the index of each answer's prompt in its
    :class:`SharedPromptBatch`; answer_ids (n, A) right-padded, with EOS; answer_mask (n, A) bool."""

    rows: torch.Tensor
    answer_ids: torch.Tensor
    answer_mask: torch.Tensor


@dataclass(frozen=True)
class SharedPromptBatch:
    """Several answers per prompt, each prompt stored (and forwarded) once: prompt_ids (N, P)
    left-padded, prompt_mask (N, P) bool, and the answers in chunks of similar length."""

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    chunks: tuple[AnswerChunk, ...]

    def to(self, device: torch.device | str) -> SharedPromptBatch:
        """The same batch with its tensors on ``device``."""
        moved = (
            AnswerChunk(c.rows.to(device), c.answer_ids.to(device), c.answer_mask.to(device))
            for c in self.chunks
        )
        return SharedPromptBatch(self.prompt_ids.to(device), self.prompt_mask.to(device), tuple(moved))


def length_chunks(lengths: Sequence[int], num_chunks: int) -> list[list[int]]:
    """Indices sorted by length, cut into at most ``num_chunks`` chunks so that the padded total (each
    chunk padded to its longest: sum of chunk size x chunk maximum) is as small as it can be.

    Exact dynamic programme over the cut points; only the ends of runs of equal length can be
    optimal cuts, so it runs over the m distinct lengths (O(num_chunks m^2), m ~ 30 for text).
    """
    order = sorted(range(len(lengths)), key=lambda j: lengths[j])
    runs = Counter(lengths)
    values = sorted(runs)
    counts = [0, *itertools.accumulate(runs[v] for v in values)]  # items of the first r lengths
    cost = [0.0] + [math.inf] * len(values)  # cost[r]: best padded total of the first r runs
    cuts: list[list[int]] = [[] for _ in range(len(values) + 1)]  # cuts[r]: its chunk ends
    for _ in range(num_chunks):
        new_cost, new_cuts = cost[:], [c[:] for c in cuts]
        for end in range(1, len(values) + 1):
            for start in range(end):
                total = cost[start] + (counts[end] - counts[start]) * values[end - 1]
                if total < new_cost[end]:
                    new_cost[end], new_cuts[end] = total, [*cuts[start], counts[end]]
        cost, cuts = new_cost, new_cuts
    bounds = [0, *cuts[-1]]
    return [order[a:b] for a, b in itertools.pairwise(bounds)]


def shared_prompt_batch(
    prompt_ids: Sequence[Sequence[int]],
    rows: Sequence[int],
    answer_ids: Sequence[Sequence[int]],
    chunks: Sequence[Sequence[int]],
    pad_id: int,
) -> SharedPromptBatch:
    """Answer j belongs to prompt ``rows[j]``; ``chunks`` lists the answers of each chunk."""
    pieces = []
    for chunk in chunks:
        ids, mask = right_pad([answer_ids[j] for j in chunk], pad_id)
        pieces.append(AnswerChunk(torch.tensor([rows[j] for j in chunk]), ids, mask))
    return SharedPromptBatch(*left_pad(prompt_ids, pad_id), tuple(pieces))


def batch_from_tensors(
    prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, responses: torch.Tensor, response_mask: torch.Tensor
) -> Batch:
    attention_mask = torch.cat([prompt_mask, response_mask], dim=1)
    return Batch(
        input_ids=torch.cat([prompt_ids, responses], dim=1),
        attention_mask=attention_mask,
        position_ids=position_ids(attention_mask),
        response_mask=response_mask,
        prompt_length=prompt_ids.shape[1],
    )


def stack_batches(first: Batch, second: Batch) -> Batch:
    """One batch of ``first``'s rows then ``second``'s, prompts left-padded and responses right-padded
    to the longer of the two (padding is masked out, so each row's outputs are unchanged)."""
    prompt, response = (
        max(first.prompt_length, second.prompt_length),
        max(first.response_mask.shape[1], second.response_mask.shape[1]),
    )

    def grown(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
        return torch.cat([x.new_zeros(len(x), before), x, x.new_zeros(len(x), after)], dim=1)

    parts = []
    for b in (first, second):
        p, r = b.prompt_length, b.response_mask.shape[1]
        parts.append(
            (
                grown(b.input_ids[:, :p], prompt - p, 0),
                grown(b.attention_mask[:, :p], prompt - p, 0),
                grown(b.input_ids[:, p:], 0, response - r),
                grown(b.response_mask, 0, response - r),
            )
        )
    return batch_from_tensors(*(torch.cat(pair) for pair in zip(*parts, strict=True)))


def context_length(model: Any) -> int:
    config = model.config
    for name in ("n_positions", "max_position_embeddings"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    return 1 << 30


GROUP_BATCHES = 32
"""Batches per length-sorted group in :func:`batch_order`."""


def batch_order(
    rng: random.Random, lengths: Sequence[int], batch_size: int, group_by_length: bool
) -> list[int]:
    """One epoch of indices in whole batches (a remainder smaller than a batch is left out).

    With ``group_by_length``, a random permutation is cut into groups of ``GROUP_BATCHES`` batches, each
    group is sorted by length and cut into batches, and the batches are shuffled: every batch still
    holds random items, but of similar length, so little of it is padding.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    order = order[: len(order) - len(order) % batch_size] if len(order) >= batch_size else order
    if not group_by_length:
        return order
    batches = []
    for start in range(0, len(order), GROUP_BATCHES * batch_size):
        group = sorted(order[start : start + GROUP_BATCHES * batch_size], key=lambda i: lengths[i])
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return [i for batch in batches for i in batch]


def response_batch(tokenizer: PreTrainedTokenizerBase, prompts: list[str], responses: list[str]) -> Any:
    """A scoring batch of prompts and responses (each with its EOS)."""
    enc = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    res = [
        [*ids, tokenizer.eos_token_id] for ids in tokenizer(responses, add_special_tokens=False)["input_ids"]
    ]
    return make_batch(enc, res, tokenizer.pad_token_id)
