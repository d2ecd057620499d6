import math

import gymnasium as gym
import numpy as np
import pytest

from prefrl.envs import BACKFLIP_ENV_ID, ProxyReward, make_env, make_vec_env
from prefrl.envs.backflip import (
    FLIP_BONUS,
    airborne_rotation,
    count_flips,
    flip_progress,
    segment_flip_score,
)
from prefrl.envs.proxy import backflip_proxy, spin_proxy
from prefrl.ppo.config import PPOConfig
from prefrl.ppo.trainer import PPOTrainer

TURN = 2 * math.pi


def test_one_backward_turn_that_lands_upright_is_one_flip():
    angles = -np.array([0.0, 1.0, 3.0, 5.0, 6.1, 6.3])  # backward = negative rooty
    heights = np.array([1.2, 1.4, 1.6, 1.3, 1.0, 1.1])
    assert count_flips(angles, heights).tolist() == [0, 0, 0, 0, 1, 0]


def test_a_turn_that_ends_lying_down_or_forward_is_no_flip():
    angles = -np.array([0.0, 2.0, 4.0, 6.2])
    assert count_flips(angles, np.array([1.2, 1.2, 1.2, 0.3])).sum() == 0  # lands lying down
    assert count_flips(-angles, np.full(4, 1.2)).sum() == 0  # a front flip


def test_tumbling_along_the_ground_and_standing_up_is_no_flip():
    angles = -np.array([0.0, 1.5, 3.0, 4.5, 6.2])
    heights = np.array([1.2, 0.8, 0.2, 0.3, 1.0])  # down on the ground half way round
    assert count_flips(angles, heights).sum() == 0


def test_rocking_back_and_forth_over_a_whole_turn_counts_once():
    angles = -np.array([0.0, 3.0, 6.2, 5.0, 6.2, 4.0, 6.3])
    assert count_flips(angles, np.full(7, 1.2)).sum() == 1


def test_flip_progress_pays_airborne_backward_rotation_and_the_flip():
    angles = -np.array([0.0, 1.0, 2.0, 3.0])
    heights = np.array([1.0, 1.0, 0.2, 0.2])  # the last two steps roll on the ground
    assert airborne_rotation(angles, heights).tolist() == [0.0, 1.0, 0.0, 0.0]
    full = -np.linspace(0, TURN, 5)
    assert flip_progress(full, np.full(5, 1.2)).sum() == pytest.approx(TURN + FLIP_BONUS)
    obs = np.zeros((5, 11))
    obs[:, 0], obs[:, 1] = 1.2, full
    assert segment_flip_score(obs) == pytest.approx(TURN + FLIP_BONUS)


def test_backflip_env_reports_the_score_flips_and_hopper_reward():
    env = gym.make(BACKFLIP_ENV_ID)
    assert env.spec is not None and env.spec.max_episode_steps == 1000
    obs, _ = env.reset(seed=0)
    angles, heights, rewards = [obs[1]], [obs[0]], []
    for _ in range(300):  # random actions: the Hopper falls, and the episode does not end
        obs, reward, terminated, _, info = env.step(env.action_space.sample())
        assert not terminated and {"flips", "flip_progress", "hopper_reward"} <= set(info)
        angles.append(obs[1])
        heights.append(obs[0])
        rewards.append(reward)
    expected = flip_progress(np.array(angles), np.array(heights))[1:]
    np.testing.assert_allclose(rewards, expected, atol=1e-9)


def test_proxy_replaces_the_reward_and_keeps_the_true_one_in_info():
    env = ProxyReward(gym.make("Pendulum-v1"), "spin")
    env.reset(seed=0)
    obs, reward, _, _, info = env.step(np.array([2.0], dtype=np.float32))
    assert reward == info["proxy_reward"] == spin_proxy(obs) == abs(obs[2])
    assert info["true_reward"] < 0  # Pendulum's own reward
    hopper = make_env("Hopper-v5", proxy_reward="backflip")
    hopper.reset(seed=0)
    obs, reward, *_ = hopper.step(hopper.action_space.sample())
    assert reward == pytest.approx(obs[6] + np.abs(obs[7:11]).sum()) == backflip_proxy(obs)


def test_a_proxy_on_the_wrong_env_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="use it with Pendulum-v1"):
        make_env("CartPole-v1", proxy_reward="spin")
    with pytest.raises(ValueError, match="pick one of"):
        make_vec_env("Pendulum-v1", 2, proxy_reward="nope")


def test_ppo_logs_proxy_return_true_return_and_flips_side_by_side():
    config = PPOConfig(
        env_id=BACKFLIP_ENV_ID, proxy_reward="backflip", num_envs=2, num_steps=520,
        total_timesteps=2080, num_minibatches=4, update_epochs=1, num_eval_episodes=0,
    )  # fmt: skip
    trainer = PPOTrainer(config)
    metrics = trainer.train_iteration() | trainer.train_iteration()
    assert metrics["env/episode_return"] == metrics["env/proxy_return"]  # the agent is paid the proxy
    assert {"env/true_return", "env/flips"} <= set(metrics)
    assert metrics["env/proxy_return"] > 10 * abs(metrics["env/true_return"])
