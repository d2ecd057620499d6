"""Running statistics for observation normalisation and reward scaling (saved in checkpoints)."""

from __future__ import annotations

from typing import Any

import numpy as np

NORM_EPS = 1e-8
"""Added to the variance before the square root when normalising."""


class RunningMeanStd:
    """Mean and variance of a stream of batches (Chan et al. parallel update), in float64."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 1e-4  # a tiny prior so the first update is well defined

    def update(self, batch: np.ndarray) -> None:
        """``batch`` is (N, *shape)."""
        if batch.shape[0] == 0:
            return
        # sum / n rather than mean() and var(): the same values without their per-call Python
        # overhead, which dominates for the one-row batches of a rollout step.
        n = batch.shape[0]
        batch_mean = batch.sum(axis=0) / n
        batch_var = np.square(batch - batch_mean).sum(axis=0) / n
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = np.asarray(state["mean"], dtype=np.float64).copy()
        self.var = np.asarray(state["var"], dtype=np.float64).copy()
        self.count = float(state["count"])


class ObsNormalizer:
    """clip((obs - mean) / sqrt(var + eps), -clip, clip) with running statistics; identity if off."""

    def __init__(self, shape: tuple[int, ...], enabled: bool, clip: float = 10.0) -> None:
        self.enabled = enabled
        self.clip = clip
        self.rms = RunningMeanStd(shape)

    def __call__(self, obs: np.ndarray, update: bool = True) -> np.ndarray:
        """(B, D) raw -> (B, D) float32 normalised; ``update`` folds ``obs`` into the statistics."""
        if not self.enabled:
            return obs.astype(np.float32, copy=False)
        if update:
            self.rms.update(obs)
        scaled = (obs - self.rms.mean) / np.sqrt(self.rms.var + NORM_EPS)
        return _clip(scaled, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return self.rms.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rms.load_state_dict(state)


class RewardScaler:
    """Divides rewards by the running std of the discounted return (as SB3's VecNormalize does)."""

    def __init__(self, num_envs: int, gamma: float, enabled: bool, clip: float = 10.0) -> None:
        self.enabled = enabled
        self.gamma = gamma
        self.clip = clip
        self.rms = RunningMeanStd(())
        self.returns = np.zeros(num_envs, dtype=np.float64)

    def __call__(self, rewards: np.ndarray, done: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(B,) raw rewards of one step -> (B,) float32 scaled; ``done`` ends the returns."""
        if not self.enabled:
            return rewards.astype(np.float32, copy=False)
        self.returns = self.returns * self.gamma + rewards
        self.rms.update(self.returns[valid])
        self.returns[done] = 0.0
        scaled = rewards / np.sqrt(self.rms.var + NORM_EPS)
        return _clip(scaled, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"rms": self.rms.state_dict(), "returns": self.returns.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rms.load_state_dict(state["rms"])
        self.returns = np.asarray(state["returns"], dtype=np.float64).copy()


def _clip(x: np.ndarray, bound: float) -> np.ndarray:
    """clip(x, -bound, bound) as two ufunc calls (np.clip's Python wrapper costs more than the work
    on one row)."""
    return np.minimum(np.maximum(x, -bound), bound)
