import math

import numpy as np
import pytest

from prefrl.datatypes import Segment
from prefrl.preferences.labellers import SyntheticLabeller, SyntheticLabellerConfig, synthetic_labels


def rewards(*rows):
    return np.array(rows, dtype=np.float64)


def test_deterministic_teacher_prefers_the_higher_true_return():
    labels = synthetic_labels(rewards([1, 1], [0, 0], [2, 0]), rewards([0, 0], [1, 1], [1, 1]),
                              SyntheticLabellerConfig(), np.random.default_rng(0))  # fmt: skip
    assert labels.tolist() == [1.0, 0.0, 0.5]  # equal returns (2 vs 2) are "equally good"


def test_equal_threshold_skip_and_myopia():
    cfg = SyntheticLabellerConfig(equal_threshold=0.5, skip_threshold=0.1)
    labels = synthetic_labels(rewards([1, 0.2], [0, 0], [3, 0]), rewards([1, 0], [0, 0], [0, 1]),
                              cfg, np.random.default_rng(0))  # fmt: skip
    assert labels[0] == 0.5 and math.isnan(labels[1]) and labels[2] == 1.0
    # a myopic teacher remembers the end of the clip: 3 early loses to 1 at the end
    myopic = SyntheticLabellerConfig(myopic_gamma=0.1)
    assert synthetic_labels(rewards([3, 0]), rewards([0, 1]), myopic, np.random.default_rng(0))[0] == 0.0


@pytest.mark.parametrize("error_rate", [0.0, 0.2])
def test_error_rate_flips_that_share_of_answers(error_rate):
    n = 20_000
    r1, r2 = np.ones((n, 1)), np.zeros((n, 1))
    labels = synthetic_labels(
        r1, r2, SyntheticLabellerConfig(error_rate=error_rate), np.random.default_rng(1)
    )
    assert abs((labels == 0).mean() - error_rate) < 0.01


def test_boltzmann_teacher_follows_the_sigmoid():
    n, diff, beta = 20_000, 0.5, 2.0
    labels = synthetic_labels(np.full((n, 1), diff), np.zeros((n, 1)), SyntheticLabellerConfig(beta=beta),
                              np.random.default_rng(2))  # fmt: skip
    assert abs(labels.mean() - 1 / (1 + math.exp(-beta * diff))) < 0.01


def test_labeller_protocol_on_segments():
    def seg(r):
        return Segment(np.zeros((2, 3)), np.zeros(2), np.array(r, dtype=np.float32))

    labeller = SyntheticLabeller(SyntheticLabellerConfig(skip_threshold=0.5), np.random.default_rng(0))
    assert labeller.label([(seg([1, 1]), seg([0, 0])), (seg([0, 0]), seg([0, 0.1]))]) == [1.0, None]
    assert labeller.label([]) == []
