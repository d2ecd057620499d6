import numpy as np
import pytest

from prefrl.envs.normalize import ObsNormalizer, RewardScaler, RunningMeanStd


def test_running_mean_std_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 4))
    rms = RunningMeanStd((4,))
    for chunk in np.array_split(data, 7):
        rms.update(chunk)
    np.testing.assert_allclose(rms.mean, data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(rms.var, data.var(0), rtol=1e-4)


def test_obs_normalizer_state_round_trip_and_frozen_mode():
    rng = np.random.default_rng(1)
    norm = ObsNormalizer((3,), enabled=True)
    for _ in range(5):
        norm(rng.normal(5.0, 3.0, size=(16, 3)))
    out = norm(rng.normal(5.0, 3.0, size=(2000, 3)))
    assert abs(out.mean()) < 0.2 and abs(out.std() - 1) < 0.2 and out.dtype == np.float32
    other = ObsNormalizer((3,), enabled=True)
    other.load_state_dict(norm.state_dict())
    x = rng.normal(size=(4, 3))
    np.testing.assert_array_equal(other(x, update=False), norm(x, update=False))
    before = norm.state_dict()["count"]
    norm(x, update=False)
    assert norm.state_dict()["count"] == before
    assert ObsNormalizer((3,), enabled=False)(x).tolist() == x.astype(np.float32).tolist()


def test_reward_scaler_divides_by_std_of_discounted_return():
    scaler = RewardScaler(num_envs=2, gamma=0.5, enabled=True)
    ones, no, yes = np.ones(2), np.zeros(2, bool), np.ones(2, bool)
    for _ in range(200):
        scaler(ones, no, yes)
    # the discounted return of a constant reward 1 converges to 1 / (1 - 0.5) = 2 with little spread
    assert scaler.returns == pytest.approx([2.0, 2.0])
    scaler(ones, np.array([True, False]), yes)
    assert scaler.returns[0] == 0.0 and scaler.returns[1] == pytest.approx(2.0)
