"""Which pairs of segments to ask about (or single segments to ask a rating of): at random, or where
the reward-model ensemble disagrees most (the variance across members of P[1 > 2], or of where a
segment falls on each member's scale) among ~10x oversampled random candidates."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from prefrl.reward_model.ensemble import RewardModel


class QuerySelector(Protocol):
    def select(
        self, obs: torch.Tensor, actions: torch.Tensor, masks: torch.Tensor, num_pairs: int
    ) -> np.ndarray:
        """(N, S, D) candidate segments, (N, S) real-step masks -> (num_pairs, 2) indices of the
        pairs to ask."""
        ...

    def select_single(
        self, obs: torch.Tensor, actions: torch.Tensor, masks: torch.Tensor, num: int
    ) -> np.ndarray:
        """(N, S, D) candidate segments -> (num,) indices of distinct segments to ask a rating of
        (fewer when N < num)."""
        ...


def random_pairs(num_segments: int, num_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """(num_pairs, 2) random pairs of distinct segment indices."""
    assert num_segments >= 2, "need at least 2 segments to form a pair"
    first = rng.integers(0, num_segments, num_pairs)
    second = (first + rng.integers(1, num_segments, num_pairs)) % num_segments
    return np.stack([first, second], axis=1)


class RandomSelector:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def select(
        self, obs: torch.Tensor, actions: torch.Tensor, masks: torch.Tensor, num_pairs: int
    ) -> np.ndarray:
        return random_pairs(obs.shape[0], num_pairs, self.rng)

    def select_single(
        self, obs: torch.Tensor, actions: torch.Tensor, masks: torch.Tensor, num: int
    ) -> np.ndarray:
        return self.rng.permutation(obs.shape[0])[:num]


class DisagreementSelector:
    """The paper's active selection: the pairs with the highest ensemble variance of P[1 > 2]."""

    def __init__(self, model: RewardModel, rng: np.random.Generator, oversample: int = 10) -> None:
        self.model = model
        self.rng = rng
        self.oversample = oversample

    def select(
        self, obs: torch.Tensor, actions: torch.Tensor, masks: torch.Tensor, num_pairs: int
    ) -> np.ndarray:
        candidates = random_pairs(obs.shape[0], num_pairs * self.oversample, self.rng)
        i, j = torch.from_numpy(candidates[:, 0]), torch.from_numpy(candidates[:, 1])
        variance = self.model.preference_disagreement(
            obs[i], actions[i], obs[j], actions[j], masks[i], masks[j]
        )
        top = torch.argsort(variance, descending=True)[:num_pairs].numpy()
        return candidates[top]

    def select_single(
        self, obs: torch.Tensor, actions: torch.Tensor, masks: torch.Tensor, num: int
    ) -> np.ndarray:
        candidates = self.rng.permutation(obs.shape[0])[: num * self.oversample]
        idx = torch.from_numpy(candidates)
        variance = self.model.rating_disagreement(obs[idx], actions[idx], masks[idx])
        return candidates[torch.argsort(variance, descending=True)[:num].numpy()]
