"""``LearnedReward``: a gymnasium wrapper that gives any agent the reward model's reward."""

from __future__ import annotations

from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

from prefrl.checkpoint import load_checkpoint
from prefrl.envs.make import make_env
from prefrl.reward_model.ensemble import RewardModel, RewardModelConfig
from prefrl.validation import config_from_dict

RUN_CHECKPOINT = Path("checkpoints") / "last.pt"
"""Where a run directory keeps its checkpoint."""


def load_reward_model(path: str | Path) -> RewardModel:
    """The reward model (with its normalisation) that a ``prefrl rlhp`` run learned; ``path`` is the
    run directory or its checkpoint file. Its env is made once to read the spaces."""
    path = Path(path)
    checkpoint = path / RUN_CHECKPOINT if path.is_dir() else path
    state = load_checkpoint(checkpoint)
    if "rlhp" not in state:
        raise ValueError(
            f"{checkpoint} holds no reward model (a `prefrl ppo` run learns none): pass the run "
            "directory of `prefrl rlhp`"
        )
    saved = state["rlhp"]
    env = make_env(saved["config"]["ppo"]["env_id"])
    try:
        obs_space = env.observation_space
        assert isinstance(obs_space, gym.spaces.Box)
        config = config_from_dict(RewardModelConfig, saved["config"]["reward_model"])
        model = RewardModel(obs_space, env.action_space, config)
    finally:
        env.close()
    model.load_state_dict(saved["reward_model"])
    return model.eval()


class LearnedReward(gym.Wrapper):
    """Replaces the env's reward by the reward model's normalised r_hat(s_t, a_t), or mixes them:
    ``reward = env_coef * env reward + r_hat``. The env's own reward stays in ``info["true_reward"]``
    (for diagnostics; the agent does not see it when ``env_coef`` is 0). With ``gamma`` (the agent's
    discount), a terminating step also pays the learned value of the absorbing state after it, as
    ``prefrl rlhp`` pays its agent (without it, ending an episode early can look free).

    ``LearnedReward.from_run(env, run_dir)`` wraps ``env`` in the reward a ``prefrl rlhp`` run learned."""

    def __init__(
        self, env: gym.Env, reward_model: RewardModel, env_coef: float = 0.0, gamma: float | None = None
    ) -> None:
        super().__init__(env)
        self.reward_model = reward_model
        self.env_coef = env_coef
        self.gamma = gamma
        self._obs: np.ndarray | None = None

    @classmethod
    def from_run(
        cls, env: gym.Env, run_dir: str | Path, env_coef: float = 0.0, gamma: float | None = None
    ) -> LearnedReward:
        """``env`` paid the reward model learned by the ``prefrl rlhp`` run in ``run_dir``."""
        return cls(env, load_reward_model(run_dir), env_coef, gamma)

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
        if terminated and self.gamma is not None:
            with torch.no_grad():
                learned += float(self.reward_model.absorbing_value(self.gamma))
        self._obs = np.asarray(obs)
        info = {**info, "true_reward": float(reward), "learned_reward": learned}
        return obs, self.env_coef * float(reward) + learned, terminated, truncated, info
