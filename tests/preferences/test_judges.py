import math

import numpy as np
import pytest

from prefrl.datatypes import Segment
from prefrl.preferences.judges import FlipJudge


def hopper_segment(angles, heights) -> Segment:
    obs = np.zeros((len(angles), 11), dtype=np.float32)
    obs[:, 0], obs[:, 1] = heights, angles
    # the env's reward is deliberately the opposite: the judge must not read it
    return Segment(obs, np.zeros((len(angles), 3), np.float32), -np.asarray(angles, np.float32))


def test_flip_judge_prefers_the_clean_backflip_over_thrashing_on_the_ground():
    flip = hopper_segment(-np.linspace(0, 2 * math.pi, 20), np.full(20, 1.3))
    half = hopper_segment(-np.linspace(0, math.pi, 20), np.full(20, 1.3))
    thrash = hopper_segment(-np.linspace(0, 6 * math.pi, 20), np.full(20, 0.2))  # spinning lying down
    still = hopper_segment(np.zeros(20), np.full(20, 1.2))
    judge = FlipJudge()
    assert judge.label([(flip, half), (half, flip), (thrash, half), (thrash, still)]) == [1.0, 0.0, 0.0, 0.5]
    assert judge.name == "flip-judge"


def test_flip_judge_refuses_non_hopper_segments_with_the_fix():
    seg = Segment(np.zeros((5, 3), np.float32), np.zeros((5, 1), np.float32), np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="prefrl/HopperBackflip-v0"):
        FlipJudge().label([(seg, seg)])
