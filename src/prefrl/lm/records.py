"""Language-model datasets as records, with TRL's column names: ``prompt``/``completion`` for SFT,
``prompt``/``chosen``/``rejected`` for preferences, ``prompt``/``completions`` (a list, best first) for
K-way rankings and ``prompt``/``completion``/``rating`` for ratings; TRL's conversational form
(messages) too, rendered with the tokenizer's chat template (lm/chat.py). A source is a JSONL file, a
Hugging Face ``datasets.Dataset``, a list of dicts, a dataset name or directory for
``datasets.load_dataset`` / ``load_from_disk``, or the preference store of a run people labelled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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
