"""``LearnedReward``: a gymnasium wrapper that gives any agent the reward model's reward."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

from prefrl.reward_model.ensemble import RewardModel


class LearnedReward(gym.Wrapper):
    """Replaces the env's reward by the reward model's normalised r_hat(s_t, a_t), or mixes them:
    ``reward = env_coef * env reward + r_hat``. The env's own reward stays in ``info["true_reward"]``
    (for diagnostics; the agent does not see it when ``env_coef`` is 0)."""

    def __init__(self, env: gym.Env, reward_model: RewardModel, env_coef: float = 0.0) -> None:
        super().__init__(env)
        self.reward_model = reward_model
        self.env_coef = env_coef
        self._obs: np.ndarray | None = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs = np.asarray(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        assert self._obs is not None, "call reset() before step()"
        obs_t = torch.as_tensor(self._obs, dtype=torch.float32)[None]
        action_t = torch.as_tensor(np.asarray(action))[None]
        with torch.no_grad():
            learned = float(self.reward_model(obs_t, action_t)[0])
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._obs = np.asarray(obs)
        info = {**info, "true_reward": float(reward), "learned_reward": learned}
        return obs, self.env_coef * float(reward) + learned, terminated, truncated, info
