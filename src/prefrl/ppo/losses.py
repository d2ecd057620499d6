"""PPO losses as pure functions (Schulman et al. 2017). ``mask`` (bool, True = real) is optional."""

from __future__ import annotations

import torch

from prefrl.masked import masked_mean


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    clip_coef: float,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate loss, to minimise: mean(max(-A * r, -A * clip(r, 1 - eps, 1 + eps))).

    Also returns approx_kl (the low-variance k3 estimator E[(r - 1) - log r]) and clip_frac (share of
    samples whose ratio is outside [1 - eps, 1 + eps]); both are detached.
    """
    log_ratio = logprobs - old_logprobs
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        approx_kl = masked_mean((ratio - 1.0) - log_ratio, mask)
        clip_frac = masked_mean(((ratio - 1.0).abs() > clip_coef).to(ratio.dtype), mask)
    return loss, {"approx_kl": approx_kl, "clip_frac": clip_frac}


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    clip_coef: float | None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """0.5 * mean squared error to ``returns``; with ``clip_coef``, the pessimistic clipped form
    0.5 * mean(max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2))."""
    unclipped = (values - returns) ** 2
    if clip_coef is None:
        return 0.5 * masked_mean(unclipped, mask)
    clipped_values = old_values + torch.clamp(values - old_values, -clip_coef, clip_coef)
    clipped = (clipped_values - returns) ** 2
    return 0.5 * masked_mean(torch.maximum(unclipped, clipped), mask)


def entropy_bonus(entropy: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean entropy (the loss subtracts ``ent_coef`` times this)."""
    return masked_mean(entropy, mask)


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var[returns - values] / Var[returns]; NaN when the returns have no variance."""
    var_returns = returns.var()
    if var_returns.item() == 0:
        return float("nan")
    return float(1.0 - (returns - values).var() / var_returns)
