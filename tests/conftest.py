import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import torch

torch.set_num_threads(1)


import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from prefrl.envs.normalize import ObsNormalizer, RewardScaler  # noqa: E402
from prefrl.ppo.policy import ActorCritic  # noqa: E402
from prefrl.ppo.rollout import RolloutCollector  # noqa: E402


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


def _collect(num_envs=3, num_steps=40, reward_fn=None, reward_scaler=None):
    envs = gym.vector.SyncVectorEnv(
        [lambda i=i: gym.wrappers.TimeLimit(CounterEnv(i), 4 if i == 1 else 100) for i in range(num_envs)]
    )
    collector = RolloutCollector(
        envs,
        ObsNormalizer((2,), False),
        reward_scaler or RewardScaler(num_envs, 1.0, False),
        seed=0,
        device=torch.device("cpu"),
        reward_fn=reward_fn,
    )
    policy = ActorCritic(envs.single_observation_space, envs.single_action_space)
    return collector.collect(policy, num_steps, torch.Generator().manual_seed(0))


@pytest.fixture
def collect_counter():
    """collect_counter(num_envs, num_steps, reward_fn=None, reward_scaler=None) -> (rollout, stats)
    of CounterEnvs with a random policy;
    env 1 is truncated at 4 steps, the others terminate after 2-6 steps."""
    return _collect
