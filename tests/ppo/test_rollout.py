"""gymnasium 1.x autoresets on the step after an episode ends: no transition and no advantage may
cross an episode boundary."""

import dataclasses

import gymnasium as gym
import numpy as np
import torch

from prefrl.envs.normalize import ObsNormalizer, RewardScaler
from prefrl.ppo.gae import gae
from prefrl.ppo.policy import ActorCritic
from prefrl.ppo.rollout import RolloutCollector
from prefrl.ppo.trainer import make_batch


class CounterEnv(gym.Env):
    """obs = (episode id, step in episode); reward = episode id + 1; episodes of varying length."""

    observation_space = gym.spaces.Box(0, 1e6, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, index: int) -> None:
        self.index, self.episode, self.t = index, -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return np.array([self.episode, 0.0]), {}

    def step(self, action):
        self.t += 1
        length = 2 + (3 * self.episode + self.index) % 5
        return (
            np.array([self.episode, self.t]),
            float(self.episode + 1),
            self.t >= length,
            False,
            {},
        )


def collect(num_envs=3, num_steps=40):
    envs = gym.vector.SyncVectorEnv(
        [lambda i=i: gym.wrappers.TimeLimit(CounterEnv(i), 4 if i == 1 else 100) for i in range(num_envs)]
    )
    collector = RolloutCollector(
        envs,
        ObsNormalizer((2,), False),
        RewardScaler(num_envs, 1.0, False),
        seed=0,
        device=torch.device("cpu"),
    )
    policy = ActorCritic(envs.single_observation_space, envs.single_action_space)
    return collector.collect(policy, num_steps, torch.Generator().manual_seed(0))


def test_transitions_stay_inside_episodes():
    rollout, _ = collect()
    obs, valid = rollout.obs.numpy(), rollout.valid.numpy()
    done = (rollout.terminated | rollout.truncated).numpy()
    assert rollout.truncated.any() and rollout.terminated.any()
    B, T = valid.shape
    for b in range(B):
        assert valid[b, 0]
        for t in range(1, T):
            assert valid[b, t] == (not done[b, t - 1])  # exactly the autoreset steps are invalid
        for t in range(T - 1):
            if not valid[b, t]:
                continue
            if not done[b, t]:  # a real transition: same episode, one step on
                assert obs[b, t + 1, 0] == obs[b, t, 0] and obs[b, t + 1, 1] == obs[b, t, 1] + 1
            else:  # the next slot holds the final observation of the same episode, then a new one
                assert obs[b, t + 1, 0] == obs[b, t, 0]
                if t + 2 < T:
                    assert obs[b, t + 2, 0] == obs[b, t, 0] + 1 and obs[b, t + 2, 1] == 0


def test_advantages_do_not_cross_episode_boundaries():
    rollout, _ = collect()
    zeros = torch.zeros_like(rollout.values)
    rollout = dataclasses.replace(rollout, values=zeros, last_values=zeros[:, 0])
    adv, _ = gae(
        rollout.rewards,
        rollout.values,
        rollout.next_values,
        rollout.terminated,
        rollout.truncated,
        gamma=1.0,
        gae_lambda=1.0,
        valid=rollout.valid,
    )
    obs, valid, rewards = rollout.obs.numpy(), rollout.valid.numpy(), rollout.rewards.numpy()
    B, T = valid.shape
    for b in range(B):
        for t in range(T):
            same = [k for k in range(t, T) if valid[b, k] and obs[b, k, 0] == obs[b, t, 0]]
            expected = rewards[b, same].sum() if valid[b, t] else 0.0
            assert adv[b, t].item() == expected, (b, t)
    assert len(make_batch(rollout, 1.0, 1.0)) == int(valid.sum())


def test_finished_episodes_report_their_true_return_and_length():
    rollout, stats = collect(num_steps=30)
    done = (rollout.terminated | rollout.truncated).numpy()
    obs = rollout.obs.numpy()
    expected = []  # (length, return) in the order episodes end: by step, then env
    for t in range(done.shape[1] - 1):
        for b in range(done.shape[0]):
            if done[b, t]:
                episode, length = obs[b, t + 1, 0], obs[b, t + 1, 1]  # the final observation
                expected.append((int(length), float((episode + 1) * length)))
    assert len(expected) >= 5
    assert list(zip(stats.lengths, stats.returns, strict=True))[: len(expected)] == expected
