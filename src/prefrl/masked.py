"""Masked reductions. A mask is bool with True = a real step/token; shapes broadcast with ``x``."""

from __future__ import annotations

import torch

WHITEN_EPS = 1e-8
"""Added to the variance before the square root in :func:`masked_whiten`."""


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``x`` over the True entries of ``mask`` (all entries when ``mask`` is None)."""
    if mask is None:
        return x.mean()
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor | None = None, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``x`` over the True entries of ``mask``."""
    if mask is None:
        return x.var(unbiased=unbiased) if x.numel() > 1 else torch.zeros((), dtype=x.dtype)
    m = mask.to(x.dtype)
    n = m.sum()
    mean = (x * m).sum() / n.clamp_min(1.0)
    var = (((x - mean) ** 2) * m).sum() / n.clamp_min(1.0)
    if unbiased and n > 1:
        var = var * n / (n - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor | None = None, shift_mean: bool = True) -> torch.Tensor:
    """(x - mean) / std over the masked entries; masked-out entries are returned as 0."""
    mean = masked_mean(x, mask)
    std = torch.sqrt(masked_var(x, mask) + WHITEN_EPS)
    out = (x - mean) / std if shift_mean else x / std
    return out if mask is None else torch.where(mask, out, torch.zeros_like(out))


def last_valid_index(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool -> (B,) index of the last True entry of each row (-1 for an all-False row)."""
    t = torch.arange(mask.shape[-1], device=mask.device)
    return torch.where(mask, t, torch.full_like(t, -1)).amax(dim=-1)
