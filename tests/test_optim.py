"""The learning-rate schedule against hand-worked numbers."""

import math

import pytest

from prefrl.optim import LRSchedule


def test_warmup_then_constant_linear_or_cosine():
    assert [LRSchedule(2).factor(s, 10) for s in range(4)] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    linear = LRSchedule(2, "linear")
    assert [linear.factor(s, 10) for s in (2, 6, 10)] == pytest.approx([1.0, 0.5, 0.0])
    cosine = LRSchedule(0, "cosine")
    assert [cosine.factor(s, 8) for s in (0, 4, 8)] == pytest.approx([1.0, 0.5, 0.0])
    assert cosine.factor(2, 8) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    with pytest.raises(ValueError, match="warmup_steps must be >= 0"):
        LRSchedule(-1).validate()
