"""Datasets, tokenizers and batches for the language-model side.

Records use TRL's column names: ``prompt``/``completion`` for SFT, ``prompt``/``chosen``/``rejected``
for preferences, and ``prompt``/``completions`` (a list, best first) for K-way rankings; TRL's
conversational form (messages) too, rendered with the tokenizer's chat template (lm/chat.py). A source is a
JSONL file, a Hugging Face ``datasets.Dataset``, a list of dicts, or a dataset name or directory for
``datasets.load_dataset`` / ``load_from_disk``.

Batches: prompts are left-padded, responses right-padded after them, one (B, L) sequence
``[pad.. prompt | response pad..]`` with ``attention_mask`` (True = real token) and position ids that
skip the left padding. Pad is a dedicated token, never EOS.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Kind = Literal["sft", "preference", "ranking", "rating", "prompts"]
COLUMNS: dict[str, tuple[str, ...]] = {
    "prompts": ("prompt",),
    "sft": ("prompt", "completion"),
    "preference": ("prompt", "chosen", "rejected"),
    "ranking": ("prompt", "completions"),
    "rating": ("prompt", "completion", "rating"),
}


def load_records(
    source: Any, kind: Kind, tokenizer: PreTrainedTokenizerBase | None = None
) -> list[dict[str, Any]]:
    """Read and check a dataset of ``kind``; a ValueError that says the fix for anything missing.
    Conversational records (messages) become plain strings with ``tokenizer``'s chat template
    (:mod:`prefrl.lm.chat`)."""
    from prefrl.lm.chat import to_plain

    if isinstance(source, (str, Path)) and store_path(Path(source)) is not None:
        rows = _read_store(store_path(Path(source)), kind)  # type: ignore[arg-type]
    elif isinstance(source, (str, Path)):
        rows = _read_path(Path(source)) if Path(source).suffix == ".jsonl" else _load_hf(str(source))
    else:
        rows = [dict(row) for row in source]
    if not rows:
        raise ValueError(f"the {kind} dataset is empty: give at least one record")
    rows = to_plain(rows, kind, tokenizer)
    for i, row in enumerate(rows):
        check_record(row, kind, i)
    return rows


STORE_FILE = "preferences.sqlite"


def store_path(path: Path) -> Path | None:
    """The preference store a path names: a ``.sqlite`` file, or a run directory holding one."""
    if path.suffix == ".sqlite":
        return path
    return path / STORE_FILE if (path / STORE_FILE).is_file() else None


def store_answer_kind(path: Path) -> Literal["preference", "ranking", "rating"]:
    """What people gave for the texts of the preference store at ``path``: K-way rankings, ratings,
    or (else) comparisons."""
    from prefrl.preferences.store import PreferenceStore

    with PreferenceStore(path) as store:
        return "ranking" if store.text_rankings() else "rating" if store.text_ratings() else "preference"


def _read_store(path: Path, kind: str) -> list[dict[str, Any]]:
    """The answers people (or a labeller) gave to texts in a preference store. ``preference``:
    comparisons, the preferred response chosen ("equally good" and "can't tell" left out), and every
    pair of a ranking (the better one chosen); ``ranking``: the rankings, best first; ``rating``: the
    ratings of single answers."""
    from prefrl.preferences.store import PreferenceStore

    if kind not in ("preference", "ranking", "rating"):
        raise ValueError(f"a preference store holds comparisons, not {kind} records: pass it to rm or dpo")
    if not path.is_file():
        raise ValueError(f"no preference store at {path}: pass the run directory of `prefrl lm pairs`")
    with PreferenceStore(path) as store:
        answers, rankings, ratings = store.text_comparisons(), store.text_rankings(), store.text_ratings()
    if kind == "ranking":
        return [{"prompt": r.prompt, "completions": r.responses} for r in rankings]
    if kind == "rating":
        return [{"prompt": r.prompt, "completion": r.response, "rating": r.rating} for r in ratings]
    rows = [
        {"prompt": a.prompt, "chosen": first if a.label == 1.0 else second,
         "rejected": second if a.label == 1.0 else first}
        for a in answers for first, second in [(a.response_1, a.response_2)] if a.label != 0.5
    ]  # fmt: skip
    rows += [
        {"prompt": r.prompt, "chosen": r.responses[i], "rejected": r.responses[j]}
        for r in rankings for i in range(len(r.responses)) for j in range(i + 1, len(r.responses))
    ]  # fmt: skip
    if not rows:
        raise ValueError(
            f"{path} has no answered text pairs yet (ties and can't-tell left out): label some with "
            f"`prefrl label {path.parent}` first"
        )
    return rows


def _read_path(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ValueError(f"dataset file {path} does not exist: pass an existing .jsonl file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {n} is not JSON ({exc}): one JSON object per line") from None
    return rows


def _load_hf(name: str) -> list[dict[str, Any]]:
    import datasets

    try:
        if Path(name).is_dir():
            loaded: Any = datasets.load_from_disk(name)
        else:
            loaded = datasets.load_dataset(name, split="train")
    except Exception as exc:
        raise ValueError(
            f"could not load dataset {name!r} ({type(exc).__name__}): pass a .jsonl file, a directory "
            "saved with Dataset.save_to_disk, or a reachable Hugging Face dataset id"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        loaded = loaded["train"]
    return [dict(row) for row in loaded]


def record_answers(record: dict[str, Any]) -> list[str]:
    """A record's answers best first: a ranking's completions, [chosen, rejected], or a rated
    record's one completion."""
    if "completions" in record:
        return list(record["completions"])
    if "rating" in record:
        return [record["completion"]]
    return [record["chosen"], record["rejected"]]


def check_record(row: Any, kind: Kind, index: int) -> None:
    columns = COLUMNS[kind]
    if not isinstance(row, dict):
        raise ValueError(f"record {index} is not an object: each record needs {', '.join(columns)}")
    for column in columns:
        if column not in row:
            raise ValueError(
                f"record {index} has no {column!r} column: a {kind} dataset needs the columns "
                f"{', '.join(columns)} (TRL's names); rename yours"
            )
    if not isinstance(row["prompt"], str) or not row["prompt"].strip():
        raise ValueError(f"record {index} has an empty prompt: every record needs a non-empty prompt")
    rating = row.get("rating")
    if kind == "rating" and (not isinstance(rating, int) or isinstance(rating, bool) or rating < 0):
        raise ValueError(f"record {index}: 'rating' must be an integer >= 0 (0 the worst), got {rating!r}")
    responses = [row[c] for c in columns[1:]] if kind in ("prompts", "sft") else record_answers(row)
    responses = row["completions"] if kind == "ranking" else responses
    if kind == "ranking" and (not isinstance(responses, list) or len(responses) < 2):
        raise ValueError(f"record {index}: 'completions' must be a list of >= 2 answers, best first")
    for response in responses:
        if not isinstance(response, str) or not response.strip():
            raise ValueError(f"record {index} has an empty response: drop that record or fill in its text")


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
