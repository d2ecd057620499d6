"""Collect rollouts from a gymnasium vector env (next-step autoreset) into (B, T) tensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from prefrl.datatypes import Rollout
from prefrl.envs.normalize import ObsNormalizer, RewardScaler
from prefrl.ppo.policy import ActorCritic


@dataclass
class EpisodeStats:
    """Returns and lengths (true env reward, unscaled) of the episodes that ended in a rollout."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)


class RolloutCollector:
    """Steps ``envs`` with a policy and keeps the env state (current obs, running episodes) between
    rollouts. A step right after an episode ended only resets that env and is marked invalid."""

    def __init__(
        self,
        envs: gym.vector.VectorEnv,
        obs_normalizer: ObsNormalizer,
        reward_scaler: RewardScaler,
        seed: int,
        device: torch.device,
    ) -> None:
        self.envs = envs
        self.obs_normalizer = obs_normalizer
        self.reward_scaler = reward_scaler
        self.device = device
        self.num_envs = envs.num_envs
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """Start new episodes in every env (seeded), dropping the running ones."""
        raw_obs, _ = self.envs.reset(seed=seed)
        self.raw_obs = np.asarray(raw_obs, dtype=np.float64)
        """(B, D) current raw observations; normalised (and counted in the statistics) when used."""
        self.prev_done = np.zeros(self.num_envs, dtype=bool)
        self.episode_return = np.zeros(self.num_envs, dtype=np.float64)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)

    def collect(
        self, policy: ActorCritic, num_steps: int, generator: torch.Generator
    ) -> tuple[Rollout, EpisodeStats]:
        """Run ``num_steps`` vector steps; returns the (B, T) rollout and the finished episodes."""
        n, t_max = self.num_envs, num_steps
        obs_buf = np.zeros((t_max, n, *self.raw_obs.shape[1:]), dtype=np.float32)
        action_buf: np.ndarray | None = None
        logprob_buf = np.zeros((t_max, n), dtype=np.float32)
        value_buf = np.zeros((t_max, n), dtype=np.float32)
        reward_buf = np.zeros((t_max, n), dtype=np.float32)
        term_buf = np.zeros((t_max, n), dtype=bool)
        trunc_buf = np.zeros((t_max, n), dtype=bool)
        valid_buf = np.zeros((t_max, n), dtype=bool)
        stats = EpisodeStats()
        for t in range(t_max):
            obs = self.obs_normalizer(self.raw_obs)
            obs_t = torch.from_numpy(obs).to(self.device)
            with torch.inference_mode():
                actions, logprob, value = policy.act(obs_t, generator)
            actions_np = actions.cpu().numpy()
            if action_buf is None:
                action_buf = np.zeros((t_max, *actions_np.shape), dtype=actions_np.dtype)
            next_obs, reward, term, trunc, _ = self.envs.step(policy.env_actions(actions))
            valid = ~self.prev_done
            done = np.logical_or(term, trunc)
            obs_buf[t], action_buf[t] = obs, actions_np
            logprob_buf[t], value_buf[t] = logprob.cpu().numpy(), value.cpu().numpy()
            reward_buf[t] = self.reward_scaler(np.asarray(reward, dtype=np.float64), done, valid)
            term_buf[t], trunc_buf[t], valid_buf[t] = term, trunc, valid
            self._track_episodes(np.asarray(reward, dtype=np.float64), done, valid, stats)
            self.raw_obs = np.asarray(next_obs, dtype=np.float64)
            self.prev_done = done
        with torch.inference_mode():
            last_obs = self.obs_normalizer(self.raw_obs, update=False)
            last_values = policy.value(torch.from_numpy(last_obs).to(self.device))
        assert action_buf is not None

        def bt(x: np.ndarray) -> torch.Tensor:  # (T, B, ...) numpy -> (B, T, ...) tensor
            return torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, 0, 1))).to(self.device)

        rollout = Rollout(
            obs=bt(obs_buf),
            actions=bt(action_buf),
            logprobs=bt(logprob_buf),
            values=bt(value_buf),
            rewards=bt(reward_buf),
            terminated=bt(term_buf),
            truncated=bt(trunc_buf),
            valid=bt(valid_buf),
            last_values=last_values.float(),
        )
        return rollout, stats

    def _track_episodes(
        self, reward: np.ndarray, done: np.ndarray, valid: np.ndarray, stats: EpisodeStats
    ) -> None:
        self.episode_return += np.where(valid, reward, 0.0)
        self.episode_length += valid
        for i in np.flatnonzero(done):
            stats.returns.append(float(self.episode_return[i]))
            stats.lengths.append(int(self.episode_length[i]))
        self.episode_return[done] = 0.0
        self.episode_length[done] = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "obs_normalizer": self.obs_normalizer.state_dict(),
            "reward_scaler": self.reward_scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        self.reward_scaler.load_state_dict(state["reward_scaler"])
