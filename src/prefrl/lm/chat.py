"""Conversational data (TRL's form, what most hub datasets use today) turned into the plain
``prompt``/``completion``/``chosen``/``rejected`` strings the trainers read, with the tokenizer's
chat template:

- ``{"messages": [{"role": ..., "content": ...}, ...]}``: the last message is the answer (SFT), the
  ones before it the prompt; for prompts, the whole conversation is the prompt;
- ``{"prompt": [messages], "completion" | "chosen" | "rejected": [messages]}``: explicit prompt;
- ``{"chosen": [messages], "rejected": [messages]}``: the prompt implicit, the messages both share.

The prompt is rendered with ``add_generation_prompt=True`` (the template's cue for the assistant's
turn); an answer is the text of its assistant messages, and the trainers end it with EOS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefrl.validation import require

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Messages = list[dict[str, Any]]

ANSWER_COLUMNS = {"sft": ("completion",), "preference": ("chosen", "rejected"), "prompts": ()}


def is_conversational(row: Any) -> bool:
    """Whether a record holds messages rather than strings."""
    return isinstance(row, dict) and (
        "messages" in row or any(isinstance(row.get(c), list) for c in ("prompt", "completion", "chosen"))
    )


def _check_messages(messages: Any, index: int, column: str) -> Messages:
    ok = isinstance(messages, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    )
    require(
        ok and bool(messages),
        f"record {index}: {column!r} must be a non-empty list of {{'role': str, 'content': str}} messages",
    )
    return messages


def _answer_text(messages: Messages) -> str:
    return "".join(m["content"] for m in messages if m["role"] == "assistant") or messages[-1]["content"]


def _split_messages(row: dict[str, Any], kind: str, index: int) -> tuple[Messages, dict[str, Messages]]:
    """(prompt messages, answer messages per answer column) of one conversational record."""
    columns = ANSWER_COLUMNS[kind]
    if "messages" in row:
        messages = _check_messages(row["messages"], index, "messages")
        if kind == "prompts":
            return (messages[:-1] if messages[-1]["role"] == "assistant" else messages), {}
        require(
            kind == "sft" and messages[-1]["role"] == "assistant",
            f"record {index}: a 'messages' record is an SFT conversation ending with the assistant's "
            "answer; comparisons need 'chosen' and 'rejected'",
        )
        return messages[:-1], {"completion": messages[-1:]}
    answers = {c: _check_messages(row.get(c), index, c) for c in columns}
    if "prompt" in row:
        return _check_messages(row["prompt"], index, "prompt"), answers
    require(kind == "preference", f"record {index} has no 'prompt': give one, or 'messages'")
    chosen, rejected = answers["chosen"], answers["rejected"]
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    require(shared > 0, f"record {index}: 'chosen' and 'rejected' share no prompt messages: add a 'prompt'")
    return chosen[:shared], {"chosen": chosen[shared:], "rejected": rejected[shared:]}


def to_plain(
    rows: list[dict[str, Any]], kind: str, tokenizer: PreTrainedTokenizerBase | None
) -> list[dict[str, Any]]:
    """Conversational records of ``kind`` (sft, preference or prompts) as plain strings; plain
    records pass through. A ValueError with the fix when the tokenizer has no chat template."""
    if not any(is_conversational(row) for row in rows):
        return rows
    require(
        kind in ANSWER_COLUMNS,
        f"conversational {kind} data is not supported: give plain 'prompt' and 'completions' strings",
    )
    require(
        tokenizer is not None and bool(getattr(tokenizer, "chat_template", None)),
        "the data is conversational (messages) but the tokenizer has no chat template: use a chat "
        "model's tokenizer, set tokenizer.chat_template, or give plain 'prompt'/'completion' strings",
    )
    assert tokenizer is not None
    plain = []
    for index, row in enumerate(rows):
        if not is_conversational(row):
            plain.append(row)
            continue
        prompt, answers = _split_messages(row, kind, index)
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        plain.append({"prompt": text, **{c: _answer_text(m) for c, m in answers.items()}})
    return plain
