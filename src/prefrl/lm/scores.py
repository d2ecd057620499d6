"""What the policy is paid, checked and controlled: a reward function's output must be one finite
float per response (or, at the segment and token levels, one per segment or token, placed where that
segment or token ends); the adaptive KL coefficient (Ziegler et al. 2019)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from prefrl.validation import require

ScoreFn = Callable[[list[str], list[str]], Sequence[float] | torch.Tensor]
"""(prompts, responses) -> one finite score per response (the response text has no EOS)."""


def check_scores(
    scores: Any, num: int, what: str = "reward function", unit: str = "response"
) -> torch.Tensor:
    """A (num,) float tensor, or a ValueError that says what the function must return (one float
    per ``unit``)."""
    try:
        tensor = torch.as_tensor(scores, dtype=torch.float32).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"the {what} returned {type(scores).__name__}: return one float per {unit}"
        ) from None
    require(
        tensor.shape == (num,),
        f"the {what} returned shape {tuple(tensor.shape)} for {num} {unit.split()[0]}s: "
        f"return one float per {unit}",
    )
    require(
        bool(torch.isfinite(tensor).all()),
        f"the {what} returned NaN or inf: return a finite float for every {unit.split()[0]}",
    )
    return tensor


RewardLevel = Literal["sequence", "segment", "token"]
"""What a reward function scores: the whole response (one float), each segment of it (a list of
floats, one per segment, e.g. per sentence: a process reward), or each token (one float per response
token, EOS not counted)."""


def dense_scores(
    raw: Any,
    responses: torch.Tensor,
    mask: torch.Tensor,
    eos_token_id: int,
    level: RewardLevel,
    segment_ends: set[int] | None = None,
) -> torch.Tensor:
    """A reward function's per-segment or per-token scores placed on the (B, R) response tokens: a
    token's score on it, a segment's on its last token (a token in ``segment_ends``, or the last token
    of a response that goes on after its last segment end). A ValueError with the fix when a
    response's list does not have one score per segment (token)."""
    require(
        isinstance(raw, Sequence) and len(raw) == len(responses),
        f"the reward function at the {level} level must return one list of floats per response",
    )
    dense = torch.zeros(responses.shape, dtype=torch.float32)
    unit = "token (EOS not counted)" if level == "token" else "segment"
    for row, scores in enumerate(raw):
        require(
            not isinstance(scores, int | float) and hasattr(scores, "__len__"),
            f"the reward function returned {type(scores).__name__} for response {row}: at the {level} level "
            "it returns one list of floats per response (one score per answer: --reward-level sequence)",
        )
        positions = _positions(responses[row], mask[row], eos_token_id, level, segment_ends or set())
        if not positions:
            require(
                len(scores) == 0, f"response {row} is empty (no {unit}): the reward function must return []"
            )
            continue
        what = f"reward function (response {row}, {level} level)"
        dense[row, positions] = check_scores(scores, len(positions), what, unit)
    return dense.to(responses.device)


def _positions(
    tokens: torch.Tensor, mask: torch.Tensor, eos_token_id: int, level: str, segment_ends: set[int]
) -> list[int]:
    """Where one response's scores go: its real non-EOS tokens, or the ends of its segments."""
    real = [j for j in range(len(tokens)) if mask[j] and int(tokens[j]) != eos_token_id]
    if level == "token":
        return real
    ends = [j for j in real if int(tokens[j]) in segment_ends]
    if real and (not ends or ends[-1] != real[-1]):
        ends.append(real[-1])  # it goes on after its last segment end: that part is a segment too
    return ends


def segment_end_tokens(tokenizer: Any, segment_end: str) -> set[int]:
    """The ids of the tokens whose text ends with ``segment_end`` (they close a segment)."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    ends = {i for i, text in enumerate(texts) if text.strip().endswith(segment_end)}
    require(bool(ends), f"no token of the tokenizer ends with {segment_end!r}: fix --segment-end")
    return ends


def adaptive_kl_coef(kl_coef: float, kl: float, target: float, horizon: int, num: int) -> float:
    """Ziegler et al.: kl_coef * (1 + clip(kl / target - 1, -0.2, 0.2) * num / horizon)."""
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return kl_coef * (1.0 + error * num / horizon)
