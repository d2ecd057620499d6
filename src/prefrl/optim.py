"""The optimizers prefrl builds, and their learning-rate schedule, in one place."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

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


Schedule = Literal["constant", "linear", "cosine"]


@dataclass(frozen=True)
class LRSchedule:
    """How the learning rate moves over a run: a linear warmup from 0, then constant, or decaying
    linearly or along a cosine to 0 at the last step."""

    warmup_steps: int = 0
    """Optimizer steps (iterations for PPO) of linear warmup from 0."""
    lr_schedule: Schedule = "constant"
    """After the warmup: constant, linear or cosine decay to 0 at the end."""

    def validate(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}: fix --warmup-steps")

    def factor(self, step: int, num_steps: int) -> float:
        """The learning rate at 0-based ``step`` of ``num_steps``, as a share of the base rate."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.lr_schedule == "constant":
            return 1.0
        progress = (step - self.warmup_steps) / max(1, num_steps - self.warmup_steps)
        if self.lr_schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_learning_rate(optimizer: Any, lr: float) -> None:
    """Every parameter group of ``optimizer`` (or of the optimizer a DeepSpeed engine wraps) at ``lr``."""
    inner = getattr(optimizer, "optimizer", optimizer)
    for group in inner.param_groups:
        group["lr"] = lr
