"""What the policy is paid, checked and controlled: a reward function's output must be one finite
float per response; the adaptive KL coefficient (Ziegler et al. 2019)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from prefrl.validation import require

ScoreFn = Callable[[list[str], list[str]], Sequence[float] | torch.Tensor]
"""(prompts, responses) -> one finite score per response (the response text has no EOS)."""


def check_scores(scores: Any, num: int, what: str = "reward function") -> torch.Tensor:
    """A (num,) float tensor, or a ValueError that says what the function must return."""
    try:
        tensor = torch.as_tensor(scores, dtype=torch.float32).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"the {what} returned {type(scores).__name__}: return one float per response"
        ) from None
    require(
        tensor.shape == (num,),
        f"the {what} returned shape {tuple(tensor.shape)} for {num} responses: return one float per response",
    )
    require(
        bool(torch.isfinite(tensor).all()),
        f"the {what} returned NaN or inf: return a finite float for every response",
    )
    return tensor


def adaptive_kl_coef(kl_coef: float, kl: float, target: float, horizon: int, num: int) -> float:
    """Ziegler et al.: kl_coef * (1 + clip(kl / target - 1, -0.2, 0.2) * num / horizon)."""
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return kl_coef * (1.0 + error * num / horizon)
