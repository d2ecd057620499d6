"""Reward-model over-optimisation, fitted (Gao, Schulman and Hilton 2022, "Scaling Laws for Reward
Model Overoptimization"): under RL the gold score gained over the initial policy follows
R(d) = d (alpha - beta log d), with d = sqrt(KL(pi || pi_ref)). alpha is the early slope, beta how
fast over-optimisation bends it down; the gold score peaks at d* = exp(alpha / beta - 1)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GaoFit:
    alpha: float
    beta: float
    gold_0: float
    """Gold score at d = 0 (the first iteration's), from which the gain is measured."""

    def __call__(self, d: float) -> float:
        """Fitted gold score at d = sqrt(KL)."""
        return self.gold_0 + (d * (self.alpha - self.beta * math.log(d)) if d > 0 else 0.0)

    @property
    def peak(self) -> float:
        """d at which the fitted gold score is highest (inf when beta <= 0: no bend yet)."""
        return math.exp(self.alpha / self.beta - 1.0) if self.beta > 0 else math.inf


def fit_gao(sqrt_kl: Sequence[float], gold: Sequence[float]) -> GaoFit | None:
    """Least-squares alpha, beta of R(d) = d (alpha - beta log d) on points (d_i, gold_i - gold_0),
    gold_0 the first point's gold score: linear in the features (d, -d log d), solved by the 2x2
    normal equations over the points with d > 0. None with fewer than 3 such points or a singular
    system (all d equal).

    Args:
        sqrt_kl: (N,) sqrt(KL(pi || pi_ref)) per iteration, in order.
        gold: (N,) gold score per iteration.
    """
    if len(sqrt_kl) != len(gold):
        raise ValueError(
            f"{len(sqrt_kl)} sqrt(KL) values but {len(gold)} gold scores: pass one per iteration"
        )
    if not gold:
        return None
    gold_0 = gold[0]
    feats = [(d, -d * math.log(d), g - gold_0) for d, g in zip(sqrt_kl, gold, strict=True) if d > 0]
    if len(feats) < 3:
        return None
    saa = sum(a * a for a, _, _ in feats)
    sab = sum(a * b for a, b, _ in feats)
    sbb = sum(b * b for _, b, _ in feats)
    sag = sum(a * g for a, _, g in feats)
    sbg = sum(b * g for _, b, g in feats)
    det = saa * sbb - sab * sab
    if abs(det) <= 1e-12 * max(saa * sbb, 1e-300):
        return None
    return GaoFit((sag * sbb - sbg * sab) / det, (saa * sbg - sab * sag) / det, gold_0)
