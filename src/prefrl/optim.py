"""The optimizers prefrl builds, in one place."""

from __future__ import annotations

from collections.abc import Iterable

import torch

FUSED_DEVICES = ("cpu", "cuda")


def adam(
    params: Iterable[torch.nn.Parameter], lr: float, eps: float = 1e-8, weight_decay: float | None = None
) -> torch.optim.Optimizer:
    """Adam, or AdamW with ``weight_decay``, on the fused kernel where every parameter's device has
    one (CPU, CUDA): about 4x faster than the per-tensor loop for the small models here."""
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_DEVICES for p in params)
    if weight_decay is None:
        return torch.optim.Adam(params, lr=lr, eps=eps, fused=fused)
    return torch.optim.AdamW(params, lr=lr, eps=eps, weight_decay=weight_decay, fused=fused)
