"""Ratings as pure functions: the reward model fitted to single segments scored on an ordinal scale
of n classes (rating-based RL, White et al. 2024), the counterpart of ``bradley_terry.py``.

Over a batch, each member's predicted segment returns are normalised to [0, 1] (min to max). The
scale [0, 1] is cut into n class ranges whose boundaries put as many segments in each range as the
batch has ratings of that class (the boundaries follow the labels' proportions and carry no
gradient). The probability of class i grows as the normalised return moves into its range:

    Q(i) = softmax_i( -k * (R - b_i) * (R - b_{i+1}) )

negative inside the range [b_i, b_{i+1}], positive outside, and the loss is the cross-entropy of the
ratings under Q. Ratings are integers 0 (worst) .. n - 1 (best).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_SHARPNESS = 30.0
"""k: 10-100 fit a toy scale alike, 300 worse (tests/reward_model/test_ratings.py's fit)."""


def normalised_returns(returns: torch.Tensor) -> torch.Tensor:
    """(..., B) segment returns -> (..., B) in [0, 1]: min-max over the batch (the last dim)."""
    low = returns.min(-1, keepdim=True).values
    high = returns.max(-1, keepdim=True).values
    return (returns - low) / (high - low).clamp_min(1e-8)


@torch.no_grad()
def class_boundaries(normalised: torch.Tensor, ratings: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(E, B) normalised returns, (E, B) or (B,) ratings -> (E, n + 1) class boundaries, 0 and 1 at
    the ends: boundary i lies between the c-th and (c + 1)-th smallest return, c = the number of
    segments rated below class i, so that each range holds as many segments as were rated in it."""
    ratings = ratings.expand_as(normalised)
    ordered = normalised.sort(-1).values
    b = ordered.shape[-1]
    classes = torch.arange(1, num_classes, device=ratings.device)
    below = (ratings[..., None, :] < classes[:, None]).sum(-1)  # (E, n - 1)
    low = ordered.gather(-1, (below - 1).clamp(0, b - 1))
    high = ordered.gather(-1, below.clamp(0, b - 1))
    inner = torch.where(below == 0, 0.0, torch.where(below == b, 1.0, (low + high) / 2))
    zeros = torch.zeros_like(inner[..., :1])
    return torch.cat([zeros, inner, zeros + 1.0], dim=-1)


def rating_logprobs(normalised: torch.Tensor, boundaries: torch.Tensor, sharpness: float) -> torch.Tensor:
    """(E, B) normalised returns, (E, n + 1) boundaries -> (E, B, n) log Q(class)."""
    r = normalised[..., None]
    lower, upper = boundaries[..., None, :-1], boundaries[..., None, 1:]
    return F.log_softmax(-sharpness * (r - lower) * (r - upper), dim=-1)


def rating_loss(
    returns: torch.Tensor, ratings: torch.Tensor, num_classes: int, sharpness: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy of the ratings under the class probabilities of the normalised returns.

    Args:
        returns: (E, B) predicted segment returns of E ensemble members, or (B,).
        ratings: (B,) or (E, B) int64 classes in [0, num_classes) (per member after bootstrapping).
        num_classes: n, the points of the scale.
        sharpness: k, how steeply a class's probability falls outside its range.

    Returns:
        The loss, averaged over segments and summed over members, and detached metrics:
        ``accuracy`` (share of segments whose most likely class is the rated one, averaged over
        members) and ``loss_per_member`` (E,).
    """
    if returns.dim() == 1:
        returns = returns[None]
    ratings = ratings.to(torch.int64).expand_as(returns)
    normalised = normalised_returns(returns)
    logq = rating_logprobs(normalised, class_boundaries(normalised, ratings, num_classes), sharpness)
    per_member = -logq.gather(-1, ratings[..., None]).squeeze(-1).mean(-1)
    with torch.no_grad():
        accuracy = (logq.argmax(-1) == ratings).float().mean(-1)
    return per_member.sum(), {"accuracy": accuracy.mean(), "loss_per_member": per_member.detach(),
                              "accuracy_per_member": accuracy}  # fmt: skip
