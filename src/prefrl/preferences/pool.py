"""What the loop keeps in memory between iterations: the recent segments that queries are drawn
from, and the labelled comparisons and ratings as tensors for the reward model."""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from prefrl.datatypes import ComparisonBatch, RatingBatch, Segment
from prefrl.preferences.store import PreferenceStore


def stack_segments(segments: list[Segment]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """N segments of one length -> (N, S, D) obs, (N, S, ...) actions, (N, S) real-step masks."""
    obs = torch.from_numpy(np.stack([s.obs for s in segments]))
    actions = torch.from_numpy(np.stack([s.actions for s in segments]))
    masks = torch.from_numpy(np.stack([s.mask for s in segments]))
    return obs, actions, masks


class SegmentPool:
    """The most recent segments, which queries are drawn from."""

    def __init__(self, capacity: int) -> None:
        self.segments: deque[Segment] = deque(maxlen=capacity)

    def add(self, segments: list[Segment]) -> None:
        self.segments.extend(segments)

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, S, D) obs, (N, S, ...) actions, (N, S) real-step masks of the pool's segments."""
        return stack_segments(list(self.segments))

    def __len__(self) -> int:
        return len(self.segments)


class ComparisonCache:
    """The store's trainable comparisons and ratings as tensors. Each segment is read from SQLite
    once, so a refit reads only the answers given since the last one (by this process or another)."""

    def __init__(self, store: PreferenceStore) -> None:
        self.store = store
        self.segments: dict[int, Segment] = {}
        """segment id -> the segment (its true rewards unused here)."""

    def _read(self, ids: list[int]) -> list[Segment]:
        missing = [i for i in dict.fromkeys(ids) if i not in self.segments]
        for i, segment in zip(missing, self.store.segments(missing), strict=True):
            self.segments[i] = segment
        return [self.segments[i] for i in ids]

    def ratings(self) -> RatingBatch | None:
        """Every trainable rating so far, in answer order (None: there is none)."""
        ratings = self.store.ratings(trainable_only=True)
        if not ratings:
            return None
        obs, actions, masks = stack_segments(self._read([r.segment for r in ratings]))
        classes = torch.tensor([r.rating for r in ratings], dtype=torch.int64)
        return RatingBatch(obs, actions, classes, None if bool(masks.all()) else masks)

    def batch(self) -> ComparisonBatch | None:
        """Every trainable comparison so far, in answer order (None: there is none)."""
        comparisons = self.store.comparisons(trainable_only=True)
        if not comparisons:
            return None
        ids = [i for c in comparisons for i in (c.segment_1, c.segment_2)]
        obs, actions, masks = stack_segments(self._read(ids))
        labels = torch.tensor([c.label for c in comparisons], dtype=torch.float32)
        all_real = bool(masks.all())
        return ComparisonBatch(
            obs[0::2], actions[0::2], obs[1::2], actions[1::2], labels,
            None if all_real else masks[0::2], None if all_real else masks[1::2],
        )  # fmt: skip
