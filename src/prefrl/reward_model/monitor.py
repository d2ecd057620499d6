"""The reward-hacking monitor: is the agent raising the reward model's return without raising the
true one? (It needs the env's true reward: synthetic labels, or a task with a score.) Pure
functions over the recent history of predicted and true segment returns, and a small stateful
``HackingMonitor`` that the preference loop feeds once per iteration.

Comparable scale: predicted and true returns are measured as *improvement over a fixed reference
set* of segments (the initial policy's, the first ones labelled), in units of that set's spread:
``(mean(fresh) - mean(reference)) / std(reference)``, the predicted side under the current reward
model on both sets. This is unit-free and does not move when the reward model is renormalised or
refitted, so ``monitor/return_gap`` = predicted improvement - true improvement is comparable across
iterations: it grows when the agent climbs the reward model faster than the true reward.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from prefrl.datatypes import Segment
from prefrl.reward_model.ensemble import RewardModel
from prefrl.validation import require, validation_enabled

SPREAD_EPS = 1e-8
"""Added to the reference standard deviation (a reference set of identical returns)."""


@dataclass(frozen=True)
class MonitorConfig:
    window: int = 10
    """Iterations over which the trends of predicted improvement and correlation are fitted."""
    min_rise: float = 0.02
    """Predicted improvement must rise faster than this (reference std per iteration) to warn, and
    the true improvement no faster."""
    min_fall: float = 0.01
    """Correlation of predicted with true segment returns must fall faster than this per iteration."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        require(self.window >= 3, f"monitor.window must be >= 3, got {self.window}: fix --monitor.window")
        require(self.min_rise >= 0, f"monitor.min_rise must be >= 0, got {self.min_rise}")
        require(self.min_fall >= 0, f"monitor.min_fall must be >= 0, got {self.min_fall}")


def improvement(returns: np.ndarray, reference: np.ndarray) -> float:
    """(N,) returns, (M,) reference returns -> mean improvement in reference standard deviations."""
    return float((returns.mean() - reference.mean()) / (reference.std() + SPREAD_EPS))


def return_gap(
    predicted: np.ndarray, true: np.ndarray, predicted_ref: np.ndarray, true_ref: np.ndarray
) -> float:
    """Predicted improvement minus true improvement over the reference set (see module docstring)."""
    return improvement(predicted, predicted_ref) - improvement(true, true_ref)


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation, 0 when either side is constant."""
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against 0, 1, 2, ... (0 for fewer than two)."""
    if len(values) < 2:
        return 0.0
    t = np.arange(len(values), dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    return float(((t - t.mean()) * (y - y.mean())).sum() / ((t - t.mean()) ** 2).sum())


def is_hacking(
    predicted_improvements: Sequence[float],
    true_improvements: Sequence[float],
    correlations: Sequence[float],
    config: MonitorConfig,
) -> bool:
    """Over the last ``window`` iterations: the predicted improvement rises while the correlation of
    predicted with true segment returns falls and the true improvement does not rise (a policy that
    learns also narrows its returns, which lowers the correlation: the true trend tells it apart)."""
    w = config.window
    if min(len(predicted_improvements), len(true_improvements), len(correlations)) < w:
        return False
    predicted_rises = slope(list(predicted_improvements)[-w:]) > config.min_rise
    true_stalls = slope(list(true_improvements)[-w:]) <= config.min_rise
    correlation_falls = slope(list(correlations)[-w:]) < -config.min_fall
    return predicted_rises and true_stalls and correlation_falls


def predicted_returns(reward_model: RewardModel, segments: Sequence[Segment]) -> np.ndarray:
    """(N,) the reward model's normalised return of each segment (all of one length; steps past
    termination earn the normalised absorbing reward)."""
    obs = torch.from_numpy(np.stack([s.obs for s in segments]))
    actions = torch.from_numpy(np.stack([s.actions for s in segments]))
    masks = torch.from_numpy(np.stack([s.mask for s in segments]))
    with torch.no_grad():
        flat = reward_model(obs.reshape(-1, *obs.shape[2:]), actions.reshape(-1, *actions.shape[2:]))
        rewards = flat.reshape(len(segments), -1)
        if not masks.all():
            rewards = torch.where(masks, rewards, reward_model.normalised_absorbing_reward())
    return rewards.sum(-1).double().numpy()


def segment_diagnostics(
    model: RewardModel, monitor: HackingMonitor, fresh: Sequence[Segment], reference: Sequence[Segment]
) -> dict[str, float]:
    """Predicted against true returns of ``fresh`` segments (never fitted on), and the monitor's
    update against the ``reference`` segments (the first labelled) when they are of the same length."""
    predicted = predicted_returns(model, fresh)
    true = np.array([s.true_return for s in fresh])
    metrics = {
        "reward_model/segment_return_correlation": correlation(predicted, true),
        "reward_model/predicted_segment_return": float(predicted.mean()),
        "env/true_segment_return": float(true.mean()),
    }
    if len(reference) >= 2 and len(reference[0]) == len(fresh[0]):
        reference_true = np.array([s.true_return for s in reference])
        metrics.update(monitor.update(predicted, true, predicted_returns(model, reference), reference_true))
    return metrics


class HackingMonitor:
    """Keeps the recent predicted improvements and correlations; ``update`` returns the
    ``monitor/`` metrics of an iteration. ``started`` is True on the iteration a hacking episode
    begins (warn once per episode, not every iteration of it)."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self.predicted_improvements: deque[float] = deque(maxlen=config.window)
        self.true_improvements: deque[float] = deque(maxlen=config.window)
        self.correlations: deque[float] = deque(maxlen=config.window)
        self.hacking = False
        self.started = False

    def update(
        self, predicted: np.ndarray, true: np.ndarray, predicted_ref: np.ndarray, true_ref: np.ndarray
    ) -> dict[str, float]:
        """Fresh segments' predicted and true returns (N,), the reference set's (M,)."""
        pred_up, true_up = improvement(predicted, predicted_ref), improvement(true, true_ref)
        self.predicted_improvements.append(pred_up)
        self.true_improvements.append(true_up)
        self.correlations.append(correlation(predicted, true))
        hacking = is_hacking(
            self.predicted_improvements, self.true_improvements, self.correlations, self.config
        )
        self.started = hacking and not self.hacking
        self.hacking = hacking
        return {
            "monitor/predicted_improvement": pred_up,
            "monitor/true_improvement": true_up,
            "monitor/return_gap": pred_up - true_up,
            "monitor/hacking": float(hacking),
        }


TRUE_REWARD_METRICS = ("env/episode_return", "env/return_window", "env/true_segment_return",
                       "reward_model/segment_return_correlation", "monitor/", "eval/")  # fmt: skip
"""Metrics (names or prefixes) that measure the env's own reward: absent while it has paid none."""


def without_true_reward(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` without those that measure the env's reward (a task with no reward at all)."""
    return {k: v for k, v in metrics.items() if not k.startswith(TRUE_REWARD_METRICS)}
