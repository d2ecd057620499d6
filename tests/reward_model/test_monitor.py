import numpy as np
import pytest

from prefrl.reward_model.monitor import (
    HackingMonitor,
    MonitorConfig,
    correlation,
    improvement,
    is_hacking,
    return_gap,
    slope,
)

CONFIG = MonitorConfig(window=4, min_rise=0.1, min_fall=0.05)


def test_improvement_is_in_reference_standard_deviations():
    reference = np.array([0.0, 2.0])  # mean 1, std 1
    assert improvement(np.array([3.0, 4.0]), reference) == pytest.approx(2.5)
    # an affine renormalisation of the reward model leaves the predicted side unchanged
    pred, pred_ref = np.array([1.0, 3.0]), np.array([0.0, 1.0, 2.0])
    assert improvement(5 * pred - 7, 5 * pred_ref - 7) == pytest.approx(improvement(pred, pred_ref))
    gap = return_gap(pred, np.array([2.0]), pred_ref, reference)
    assert gap == pytest.approx(improvement(pred, pred_ref) - 1.0)


def test_slope_and_correlation_by_hand():
    assert slope([1.0, 3.0, 5.0]) == pytest.approx(2.0)
    assert slope([4.0]) == 0.0
    assert correlation(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert correlation(np.array([1.0, 1.0]), np.array([3.0, 2.0])) == 0.0


def test_hacking_needs_predicted_rising_true_stalling_and_correlation_falling():
    rising, flat, falling = [0.0, 1.0, 2.0, 3.0], [0.5, 0.5, 0.4, 0.5], [0.9, 0.6, 0.3, 0.0]
    assert is_hacking(rising, flat, falling, CONFIG)
    assert not is_hacking(rising, rising, falling, CONFIG)  # the true return rises along: learning
    assert not is_hacking(flat, flat, falling, CONFIG)  # predicted return not rising
    assert not is_hacking(rising, flat, [0.9, 0.9, 0.9, 0.9], CONFIG)  # still correlated
    assert not is_hacking(rising[1:], flat[1:], falling[1:], CONFIG)  # too little history


def test_monitor_warns_once_per_episode_of_hacking():
    monitor = HackingMonitor(CONFIG)
    rng = np.random.default_rng(0)
    true_ref = rng.normal(size=50)
    pred_ref = 2 * true_ref
    started, flags = [], []
    for k in range(10):
        true = rng.normal(size=20)
        hacked = k >= 3
        shift = 0.0 if not hacked else k - 2.0
        mix = min(1.0, 0.35 * (k - 2)) if hacked else 0.0
        pred = 2 * ((1 - mix) * true - mix * true) + shift  # correlation slides to -1, mean rises
        metrics = monitor.update(pred, true, pred_ref, true_ref)
        flags.append(metrics["monitor/hacking"])
        started.append(monitor.started)
        assert metrics["monitor/return_gap"] == pytest.approx(
            metrics["monitor/predicted_improvement"] - metrics["monitor/true_improvement"]
        )
    assert sum(started) == 1 and flags[started.index(True)] == 1.0
    assert flags[:3] == [0.0, 0.0, 0.0]


def test_monitor_config_errors_say_the_fix():
    with pytest.raises(ValueError, match=r"--monitor\.window"):
        MonitorConfig(window=2)
