"""Reward hacking shown: proxy rewards from the CLI, the flip judge's input checks, and the hacking
monitor on offline reward fitting (warns) against online fitting (does not)."""

import logging

import gymnasium as gym
import numpy as np
import pytest

from prefrl.cli.logger import read_metrics
from prefrl.cli.main import main
from prefrl.ppo.config import PPOConfig
from prefrl.preferences.labellers import SyntheticLabeller, SyntheticLabellerConfig
from prefrl.preferences.store import PreferenceStore
from prefrl.rlhp import RLHPConfig, RLHPTrainer


def test_ppo_on_a_proxy_reward_logs_proxy_and_true_return_side_by_side(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        "--env-id",
        "Pendulum-v1",
        "--proxy-reward",
        "spin",
        "--num-envs",
        "2",
        "--num-steps",
        "200",
        "--num-minibatches",
        "4",
    ]
    args += ["--total-timesteps", "400", "--num-eval-episodes", "0", "--run-dir", str(run_dir)]
    assert main(["ppo", *args]) == 0
    row = read_metrics(run_dir / "metrics.jsonl")[-1]
    assert row["env/episode_return"] == row["env/proxy_return"] > 0  # the agent is paid |speed|
    assert row["env/true_return"] < 0  # Pendulum's own reward, logged alongside


def test_the_flip_judge_on_another_env_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["rlhp", "--env-id", "Pendulum-v1", "--labeller", "flip-judge", "--run-dir", "run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "use --env-id prefrl/HopperBackflip-v0" in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []


class Drift(gym.Env):
    """A point on a line moved left/right by 0.1 a step; the true reward peaks at x = ``peak``. A
    random policy stays within about |x| < 0.7, where "further right is better": with the peak at 1,
    a reward model fitted there alone extrapolates that past the peak, and an agent following it
    drives on towards x = 5; with the peak at 10, further right really is better."""

    observation_space = gym.spaces.Box(-10, 10, (1,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, peak: float) -> None:
        self.peak = peak

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-0.2, 0.2)), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x += 0.1 * (int(action) - 1)
        self.t += 1
        return np.array([self.x], np.float32), -abs(self.x - self.peak), False, self.t >= 50, {}


def drift_run(tmp_path, online: bool, peak: float, iterations: int = 14) -> list[dict[str, float]]:
    ppo = PPOConfig(
        env_id="Drift", num_envs=4, num_steps=50, total_timesteps=200 * iterations, learning_rate=3e-3,
        num_minibatches=2, num_eval_episodes=0, normalize_reward=True,
    )  # fmt: skip
    config = RLHPConfig(ppo=ppo, num_labels=100, segment_length=10, online=online)
    envs = gym.vector.SyncVectorEnv([lambda: Drift(peak) for _ in range(4)])
    labeller = SyntheticLabeller(SyntheticLabellerConfig(), np.random.default_rng(0))
    trainer = RLHPTrainer(config, labeller, PreferenceStore(tmp_path / "p.sqlite"), envs)
    return [trainer.train_iteration() for _ in range(iterations)]


@pytest.mark.slow
def test_the_monitor_warns_once_on_offline_reward_fitting_past_the_data(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="prefrl.rlhp"):
        offline = drift_run(tmp_path, online=False, peak=1.0)
    assert offline[-1]["preferences/num_labels"] == 100  # all asked about the initial policy
    assert any(m["monitor/hacking"] for m in offline)
    warnings = [r for r in caplog.records if "possible reward hacking" in r.getMessage()]
    assert len(warnings) == 1  # once per episode of hacking
    assert offline[-1]["monitor/return_gap"] > 2  # predicted improvement far ahead of the true one
    assert offline[-1]["env/return_window"] < offline[0]["env/return_window"]  # truly worse


@pytest.mark.slow
def test_the_monitor_stays_quiet_while_the_true_return_rises_with_the_predicted(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="prefrl.rlhp"):
        online = drift_run(tmp_path, online=True, peak=10.0)
    assert not any(m["monitor/hacking"] for m in online) and not caplog.records
    assert online[-1]["monitor/true_improvement"] > 1


def test_resuming_with_another_labeller_says_which_one_to_pass(tmp_path):
    from prefrl.cli.checks import check_same_labeller
    from prefrl.datatypes import Segment

    store = PreferenceStore(tmp_path / "p.sqlite")
    seg = Segment(np.zeros((3, 11), np.float32), np.zeros((3, 3), np.float32), np.zeros(3, np.float32))
    (query,) = store.add_queries([tuple(store.add_segments([seg, seg]))])
    store.answer(query, 1.0, "flip-judge")
    store.close()
    check_same_labeller(tmp_path / "p.sqlite", "flip-judge")
    with pytest.raises(ValueError, match="resume with --labeller flip-judge"):
        check_same_labeller(tmp_path / "p.sqlite", "synthetic")
