"""Labellers answer "which of these two segments is better?" (and, those that rate, "how good is
this one?"). Synthetic teachers answer from the env's true reward, with the simulated
irrationalities of B-Pref (Lee et al. 2021)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from prefrl.datatypes import Segment
from prefrl.validation import require, validation_enabled

Label = float | None
"""P[first segment preferred]: 1, 0, 0.5 (equally good), or None (skipped / can't tell)."""


class Labeller(Protocol):
    """Who answers the preference loop's queries. ``max_pending`` None: ``label`` answers each query
    when it is asked (None for a pair: no answer, a skip). An int: people, who answer in the labelling
    app at their own pace; the loop keeps at most this many queries waiting in the store for them,
    never waits, and never calls ``label``."""

    name: str
    max_pending: int | None

    def label(self, pairs: Sequence[tuple[Segment, Segment]]) -> list[Label]: ...


class Rater(Protocol):
    """A labeller that also scores single segments (``--feedback rate`` or ``both``)."""

    def rate(self, segments: Sequence[Segment], num_classes: int) -> list[int | None]:
        """Each segment's rating, 0 (worst) .. num_classes - 1 (best), or None (can't tell)."""
        ...


@dataclass(frozen=True)
class SyntheticLabellerConfig:
    beta: float = math.inf
    """Boltzmann rationality: P[1 > 2] = sigmoid(beta * (R1 - R2)); inf answers deterministically."""
    error_rate: float = 0.0
    """Chance that a clear answer is flipped."""
    equal_threshold: float = 0.0
    """Answer "equally good" (0.5) when |R1 - R2| <= this (0: only for equal returns, as the paper)."""
    skip_threshold: float | None = None
    """Skip the pair (no answer) when both returns are below this (nothing worth judging)."""
    myopic_gamma: float = 1.0
    """Weigh step t of S by gamma^(S - 1 - t): < 1 remembers the end of a clip best."""
    rating_range: tuple[float, float] | None = None
    """Ratings: the (low, high) true segment returns the scale spans, cut into equal classes (a
    return outside goes to the end class). None: the range of the returns rated so far, widened as
    better or worse segments appear (a person who rescales as the agent improves)."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        require(self.beta > 0, f"beta must be > 0, got {self.beta}")
        require(0.0 <= self.error_rate <= 0.5, f"error_rate must be in [0, 0.5], got {self.error_rate}")
        require(self.equal_threshold >= 0, f"equal_threshold must be >= 0, got {self.equal_threshold}")
        require(0.0 < self.myopic_gamma <= 1.0, f"myopic_gamma must be in (0, 1], got {self.myopic_gamma}")
        low, high = self.rating_range or (0.0, 1.0)
        require(low < high, f"rating_range must be (low, high) with low < high, got {self.rating_range}")


def synthetic_labels(
    rewards_1: np.ndarray, rewards_2: np.ndarray, config: SyntheticLabellerConfig, rng: np.random.Generator
) -> np.ndarray:
    """(B, S) true rewards of each side -> (B,) labels in {0, 0.5, 1}, NaN where skipped."""
    s = rewards_1.shape[-1]
    weights = config.myopic_gamma ** np.arange(s - 1, -1, -1, dtype=np.float64)
    r1, r2 = rewards_1 @ weights, rewards_2 @ weights
    diff = r1 - r2
    if math.isinf(config.beta):
        labels = (diff > 0).astype(np.float64)
    else:
        p = 1.0 / (1.0 + np.exp(-np.clip(config.beta * diff, -50, 50)))
        labels = (rng.random(diff.shape) < p).astype(np.float64)
    flip = rng.random(diff.shape) < config.error_rate
    labels = np.where(flip, 1.0 - labels, labels)
    labels = np.where(np.abs(diff) <= config.equal_threshold, 0.5, labels)
    if config.skip_threshold is not None:
        labels = np.where((r1 < config.skip_threshold) & (r2 < config.skip_threshold), np.nan, labels)
    return labels


def synthetic_ratings(returns: np.ndarray, low: float, high: float, num_classes: int) -> np.ndarray:
    """(B,) true segment returns -> (B,) int64 classes: [low, high] cut into ``num_classes`` equal
    ranges, 0 the lowest; returns outside go to the end classes."""
    position = (returns - low) / max(high - low, 1e-12)
    return np.clip(np.floor(position * num_classes), 0, num_classes - 1).astype(np.int64)


class SyntheticLabeller:
    """Answers from the segments' true rewards (the paper's synthetic oracle by default)."""

    def __init__(
        self, config: SyntheticLabellerConfig, rng: np.random.Generator, name: str = "synthetic"
    ) -> None:
        self.config = config
        self.rng = rng
        self.name = name
        self.max_pending: int | None = None
        self.seen_range: tuple[float, float] | None = None
        """The lowest and highest true segment return rated so far (the scale without rating_range)."""

    def state_dict(self) -> dict:
        """The random state (so that a resumed run's noisy answers continue the same sequence) and
        the rating scale."""
        return {"rng": self.rng.bit_generator.state, "seen_range": self.seen_range}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.seen_range = state.get("seen_range")

    def rate(self, segments: Sequence[Segment], num_classes: int) -> list[int | None]:
        """Rate each segment by its (myopically weighted) true return on the scale; with
        ``error_rate``, a rating is replaced by a uniformly random one."""
        if not segments:
            return []
        cfg = self.config
        rewards = np.stack([s.true_rewards for s in segments]).astype(np.float64)
        weights = cfg.myopic_gamma ** np.arange(rewards.shape[1] - 1, -1, -1, dtype=np.float64)
        returns = rewards @ weights
        if cfg.rating_range is None:
            low, high = self.seen_range or (returns.min(), returns.max())
            self.seen_range = (float(min(low, returns.min())), float(max(high, returns.max())))
        low, high = cfg.rating_range or self.seen_range  # type: ignore[misc]
        ratings = synthetic_ratings(returns, low, high, num_classes)
        wrong = self.rng.random(len(ratings)) < cfg.error_rate
        ratings = np.where(wrong, self.rng.integers(0, num_classes, len(ratings)), ratings)
        return [int(r) for r in ratings]

    def label(self, pairs: Sequence[tuple[Segment, Segment]]) -> list[Label]:
        if not pairs:
            return []
        r1 = np.stack([a.true_rewards for a, _ in pairs]).astype(np.float64)
        r2 = np.stack([b.true_rewards for _, b in pairs]).astype(np.float64)
        labels = synthetic_labels(r1, r2, self.config, self.rng)
        return [None if math.isnan(x) else float(x) for x in labels]


@dataclass(frozen=True)
class HumanLabellingConfig:
    """How the training loop asks people (``--labeller human``): it keeps a queue of pending queries
    in the store for the labelling app, never waits for answers, and refits the reward model whenever
    the answers change."""

    queue_size: int = 10
    """Pending queries kept ready for the labellers (refilled each iteration, within the budget)."""
    redundancy: int = 1
    """Answers asked per query (k > 1: several labellers, with agreement statistics)."""
    min_labels: int = 20
    """Answers fitted before the agent is paid the learned reward (zero until then): a reward model
    fitted on a handful of answers sends the policy the wrong way, which costs many steps to undo."""
    lease_seconds: float = 300.0
    """A query shown to a labeller returns to the pool after this long without an answer."""
    host: str = "127.0.0.1"
    """Address the labelling app listens on."""
    port: int = 8000
    """Port of the labelling app (0: a free port; the URL is printed)."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        require(self.queue_size >= 1, f"queue_size must be >= 1, got {self.queue_size}")
        require(self.redundancy >= 1, f"redundancy must be >= 1, got {self.redundancy}")
        require(self.min_labels >= 1, f"min_labels must be >= 1, got {self.min_labels}")
        require(self.lease_seconds > 0, f"lease_seconds must be > 0, got {self.lease_seconds}")
        require(0 <= self.port < 65536, f"port must be in [0, 65535], got {self.port}")


class HumanLabeller:
    """People answering in the labelling app: the loop keeps ``queue_size`` queries waiting in the
    store; the answers arrive there while training goes on."""

    def __init__(self, config: HumanLabellingConfig, name: str = "human") -> None:
        self.config = config
        self.name = name
        self.max_pending: int | None = config.queue_size

    def label(self, pairs: Sequence[tuple[Segment, Segment]]) -> list[Label]:
        raise TypeError("people answer in the labelling app: the loop only stores queries for them")

    def rate(self, segments: Sequence[Segment], num_classes: int) -> list[int | None]:
        raise TypeError("people rate in the labelling app: the loop only stores queries for them")


def check_labeller(feedback: str, labeller: Labeller) -> None:
    """ValueError when ``feedback`` (compare, rate, both) asks for ratings and the labeller cannot rate."""
    if feedback != "compare" and not hasattr(labeller, "rate"):
        raise ValueError(
            f"--feedback {feedback} asks for ratings, and the {labeller.name} labeller only compares: "
            "use --feedback compare, or the synthetic or human labeller"
        )
