"""Task judges: synthetic labellers that answer from what a clip shows, by a rule a person could
write down, rather than from the env's reward. The flip judge watches for Hopper backflips."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefrl.datatypes import Segment
from prefrl.envs.backflip import HOPPER_OBS_DIM, segment_flip_score
from prefrl.preferences.labellers import Label

FLIP_JUDGE_TIE = 0.05
"""Flip scores (radians of backward turn) closer than this look equally good to the flip judge."""


def flip_judge_labels(obs_1: np.ndarray, obs_2: np.ndarray, tie: float = FLIP_JUDGE_TIE) -> np.ndarray:
    """(B, S, D) Hopper observations of each side -> (B,) labels: 1 when the first segment makes more
    progress towards a clean backflip, 0 when the second does, 0.5 within ``tie``."""
    s1 = np.array([segment_flip_score(o) for o in obs_1])
    s2 = np.array([segment_flip_score(o) for o in obs_2])
    return np.where(np.abs(s1 - s2) <= tie, 0.5, (s1 > s2).astype(np.float64))


class FlipJudge:
    """Prefers the Hopper segment that turns further backwards off the ground, with a whole turn
    that lands upright worth one turn more (``envs.backflip.flip_progress``); thrashing or rolling on
    the ground earns nothing. It reads only the clip's observations, never the env's reward."""

    name = "flip-judge"
    max_pending: int | None = None

    def label(self, pairs: Sequence[tuple[Segment, Segment]]) -> list[Label]:
        if not pairs:
            return []
        shape = pairs[0][0].obs.shape[1:]
        if shape != (HOPPER_OBS_DIM,):
            raise ValueError(
                f"the flip judge reads Hopper observations of shape ({HOPPER_OBS_DIM},), got {shape}: "
                "use it with prefrl/HopperBackflip-v0 or Hopper-v5"
            )
        obs_1 = np.stack([a.obs for a, _ in pairs]).astype(np.float64)
        obs_2 = np.stack([b.obs for _, b in pairs]).astype(np.float64)
        return [float(x) for x in flip_judge_labels(obs_1, obs_2)]
