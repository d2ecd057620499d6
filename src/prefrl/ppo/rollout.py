"""Collect rollouts from a gymnasium vector env (next-step autoreset) into (B, T) tensors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from prefrl.datatypes import Rollout, is_frames
from prefrl.envs.atari import FIRE_ACTION, life_lost
from prefrl.envs.normalize import ObsNormalizer, RewardScaler
from prefrl.envs.render_state import RENDER_STATE_KEY
from prefrl.ppo.policies import Policy
from prefrl.ppo.policy import ActorCritic

RewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(raw obs (N, D), env actions (N, ...), env rewards (N,), terminated (N,) bool) -> rewards the
agent learns from (N,). Called once per rollout on all its N = T * B steps (a learned reward runs as
one batch); ``terminated`` marks the steps that ended an episode in a terminal state."""

EPISODE_INFO_SUMS = {"true_reward": "true_return", "proxy_reward": "proxy_return", "flips": "flips"}
"""Per-step ``info`` values summed over each episode, and the ``env/`` metric they are logged as:
the env's own reward under a proxy reward, the proxy's, and task metrics such as flips."""


@dataclass
class EpisodeStats:
    """Returns and lengths (true env reward, unscaled) of the episodes that ended in a rollout."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    info_sums: dict[str, list[float]] = field(default_factory=dict)
    """``EPISODE_INFO_SUMS`` metric name -> per-episode sums, for the info keys the env reports."""


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
        reward_fn: RewardFn | None = None,
        output_device: torch.device | None = None,
        clip_reward: bool = False,
        terminal_on_life_loss: bool = False,
        sde_sample_freq: int = -1,
    ) -> None:
        self.envs = envs
        self.sde_sample_freq = sde_sample_freq
        """A gSDE policy's noise weights are drawn at each rollout's start and every this many steps
        (-1: never within a rollout)."""
        self.pixels = is_frames(envs.single_observation_space)
        """Frames (uint8) are kept as they are: no normaliser, no float copies."""
        self.clip_reward = clip_reward
        """The agent learns from sign(env reward) (Atari); a learned reward is never clipped."""
        self.terminal_on_life_loss = terminal_on_life_loss
        """A step that lost a life (``info["lives"]`` fell) is terminal for the value bootstrap; the
        game (and the logged episode) goes on."""
        self.output_device = output_device or device
        """Where the Rollout's tensors go (the update's device); ``device`` is the acting policy's."""
        self.reward_fn = reward_fn
        """Replaces the rewards the agent learns from (a learned reward); None: the env's reward."""
        self.obs_normalizer = obs_normalizer
        self.reward_scaler = reward_scaler
        self.device = device
        self.num_envs = envs.num_envs
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """Start new episodes in every env (seeded), dropping the running ones."""
        raw_obs, info = self.envs.reset(seed=seed)
        self.raw_obs = self._as_obs(raw_obs)
        self.lives = info.get("lives")
        self.render_state = _render_state(info)
        """(B, K) simulator state behind ``raw_obs`` when the envs report it (see envs.render_state)."""
        """(B, D) current raw observations; normalised (and counted in the statistics) when used."""
        self.prev_done = np.zeros(self.num_envs, dtype=bool)
        self.fire_next = np.zeros(self.num_envs, dtype=bool)
        """Envs that lost a life on the last step and wait for FIRE (``envs.atari.FIRE_ACTION``)."""
        self.episode_return = np.zeros(self.num_envs, dtype=np.float64)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.episode_info: dict[str, np.ndarray] = {}
        """info key -> (B,) running sums of the ``EPISODE_INFO_SUMS`` keys seen so far."""

    def _as_obs(self, obs: Any) -> np.ndarray:
        """Raw observations as kept between steps: uint8 frames as they are, else float64."""
        return np.asarray(obs) if self.pixels else np.asarray(obs, dtype=np.float64)

    def _policy_obs(self, update: bool = True) -> np.ndarray:
        """What the policy sees of the current observations: frames as they are, else normalised."""
        return self.raw_obs if self.pixels else self.obs_normalizer(self.raw_obs, update=update)

    def _terminated(
        self, term: np.ndarray, info: dict[str, Any], stepped: np.ndarray, done: np.ndarray
    ) -> np.ndarray:
        """(B,) terminal for the bootstrap: the env's terminations, and with ``terminal_on_life_loss``
        the steps that lost a life. Keeps this step's lives, and which envs now wait for FIRE."""
        lost = life_lost(info.get("lives"), self.lives, stepped)
        self.lives = info.get("lives")
        if self.envs.metadata.get(FIRE_ACTION) is not None:
            self.fire_next = lost & ~done
        return term | lost if self.terminal_on_life_loss else term

    def _fire_after_life_loss(self, env_actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(env actions with FIRE for the envs that wait for it, (B,) which were forced). A forced step
        is not the agent's: it is not trained on (``valid`` False), but its reward counts in the score."""
        forced = self.fire_next
        if forced.any():
            env_actions = np.where(forced, self.envs.metadata[FIRE_ACTION], env_actions)
        return env_actions, forced

    def collect(
        self, policy: Policy, num_steps: int, generator: torch.Generator, rewards: bool = True
    ) -> tuple[Rollout, EpisodeStats]:
        """Run ``num_steps`` vector steps; returns the (B, T) rollout and the finished episodes.
        ``rewards=False`` leaves the agent's rewards zero, for :meth:`with_rewards` to fill in later
        (a learned reward refitted on this very rollout first)."""
        buffers: dict[str, np.ndarray] = {}

        def store(t: int, **values: np.ndarray) -> None:  # into (T, B, ...) buffers made on first use
            for name, value in values.items():
                if name not in buffers:
                    buffers[name] = np.zeros((num_steps, *value.shape), dtype=value.dtype)
                buffers[name][t] = value

        stats = EpisodeStats()
        recorded = np.zeros(num_steps, dtype=bool)
        for t in range(num_steps):
            self._draw_noise(policy, t, generator)
            obs = self._policy_obs()
            actions = self._act(policy, obs, generator, partial(store, t))
            env_actions, forced = self._fire_after_life_loss(policy.env_actions(actions))
            next_obs, reward, term, trunc, info = self.envs.step(env_actions)
            true_reward = np.asarray(reward, dtype=np.float64)
            valid, done = ~self.prev_done & ~forced, np.logical_or(term, trunc)
            terminated = self._terminated(np.asarray(term, bool), info, valid | forced, done)
            store(
                t, obs=obs, actions=actions.cpu().numpy(), terminated=terminated,
                truncated=np.asarray(trunc, bool), valid=valid, done=done, env_actions=env_actions,
                true_rewards=true_reward.astype(np.float32),
            )  # fmt: skip
            if not self.pixels:  # frames are their own raw observations
                store(t, raw_obs=self.raw_obs.astype(np.float32))
            if self.render_state is not None:
                store(t, render_states=self.render_state)
                recorded[t] = True
            self.render_state = _render_state(info)
            self._track_info(info, done, valid | forced, stats)
            self._track_episodes(true_reward, done, valid | forced, stats)  # the game's score, all of it
            self.raw_obs = self._as_obs(next_obs)
            self.prev_done = done
        _complete_render_states(buffers, recorded)
        if self.pixels:
            buffers["raw_obs"] = buffers["obs"]  # the same array: one copy of the frames
        buffers["rewards"] = (
            self._agent_rewards(buffers) if rewards else np.zeros_like(buffers["true_rewards"])
        )
        del buffers["done"]
        with torch.inference_mode():
            if "logprobs" not in buffers:
                buffers["logprobs"], buffers["values"] = self._logprobs_and_values(policy, buffers)
            last_obs = self._policy_obs(update=False)
            last_values = policy.value(torch.from_numpy(last_obs).to(self.device))
        tensors = {  # (T, B, ...) numpy -> (B, T, ...) tensors
            k: torch.from_numpy(np.ascontiguousarray(np.swapaxes(v, 0, 1))).to(self.output_device)
            for k, v in buffers.items()
            if not (self.pixels and k == "raw_obs")
        }
        if self.pixels:
            tensors["raw_obs"] = tensors["obs"]
        return Rollout(**tensors, last_values=last_values.float().to(self.output_device)), stats

    def _draw_noise(self, policy: Policy, t: int, generator: torch.Generator) -> None:
        """gSDE: a policy's noise weights are drawn at step 0 of a rollout and every
        ``sde_sample_freq`` steps."""
        due = t == 0 or (self.sde_sample_freq > 0 and t % self.sde_sample_freq == 0)
        if due and isinstance(policy, ActorCritic) and policy.sde:
            policy.reset_noise(self.num_envs, generator)

    def _act(
        self, policy: Policy, obs: np.ndarray, generator: torch.Generator, store: Callable[..., None]
    ) -> torch.Tensor:
        """Actions for (B, ...) observations. A policy whose forward is cheap next to its per-call
        overhead (the MLPs) samples alone, and the rollout's log-probs and values come from one
        batched pass afterwards; one whose forward is the cost (the CNN) gives them now, from the
        same pass (``store``d), instead of running twice."""
        with torch.inference_mode():
            x = torch.from_numpy(obs).to(self.device)
            if policy.batched_evaluation:
                return policy.sample(x, generator)
            actions, logprobs, values = policy.act(x, generator)
        store(logprobs=logprobs.cpu().numpy(), values=values.float().cpu().numpy())
        return actions

    def _logprobs_and_values(
        self, policy: Policy, buffers: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(T, B) log-probs of the rollout's actions and values of its observations, in one batch."""
        obs, actions = buffers["obs"], buffers["actions"]
        num_steps, num_envs = obs.shape[:2]
        logprobs, _, values = policy.evaluate(
            torch.from_numpy(obs.reshape(num_steps * num_envs, *obs.shape[2:])).to(self.device),
            torch.from_numpy(actions.reshape(num_steps * num_envs, *actions.shape[2:])).to(self.device),
        )
        shape = (num_steps, num_envs)
        return logprobs.reshape(shape).cpu().numpy(), values.reshape(shape).float().cpu().numpy()

    def with_rewards(self, rollout: Rollout) -> Rollout:
        """``rollout`` (collected with ``rewards=False``) with the agent's rewards computed now,
        by ``reward_fn`` as it is now, and scaled in time order as during collection."""
        names = ("raw_obs", "env_actions", "true_rewards", "terminated", "valid")
        buffers = {k: np.swapaxes(getattr(rollout, k).cpu().numpy(), 0, 1) for k in names}  # (T, B, ...)
        buffers["done"] = buffers["terminated"] | np.swapaxes(rollout.truncated.cpu().numpy(), 0, 1)
        rewards = np.ascontiguousarray(self._agent_rewards(buffers).T)  # (B, T)
        return dataclasses.replace(rollout, rewards=torch.from_numpy(rewards).to(rollout.rewards.device))

    def _agent_rewards(self, buffers: dict[str, np.ndarray]) -> np.ndarray:
        """(T, B) scaled rewards the agent learns from: the env's, or ``reward_fn``'s computed in
        one call over the whole rollout, then scaled step by step in time order."""
        true_rewards = buffers["true_rewards"].astype(np.float64)
        if self.reward_fn is None:
            rewards = np.sign(true_rewards) if self.clip_reward else true_rewards
        else:
            num_steps, num_envs = true_rewards.shape
            raw_obs, env_actions = buffers["raw_obs"], buffers["env_actions"]
            rewards = np.asarray(
                self.reward_fn(
                    raw_obs.reshape(num_steps * num_envs, *raw_obs.shape[2:]),
                    env_actions.reshape(num_steps * num_envs, *env_actions.shape[2:]),
                    true_rewards.reshape(-1),
                    buffers["terminated"].reshape(-1),
                ),
                dtype=np.float64,
            ).reshape(num_steps, num_envs)
        done, valid = buffers["done"], buffers["valid"]
        return np.stack([self.reward_scaler(rewards[t], done[t], valid[t]) for t in range(len(rewards))])

    def _track_episodes(
        self, reward: np.ndarray, done: np.ndarray, valid: np.ndarray, stats: EpisodeStats
    ) -> None:
        self.episode_return += np.where(valid, reward, 0.0)
        self.episode_length += valid
        if not done.any():
            return
        for i in np.flatnonzero(done):
            stats.returns.append(float(self.episode_return[i]))
            stats.lengths.append(int(self.episode_length[i]))
        self.episode_return[done] = 0.0
        self.episode_length[done] = 0

    def _track_info(
        self, infos: dict[str, Any], done: np.ndarray, valid: np.ndarray, stats: EpisodeStats
    ) -> None:
        """Add this step's ``EPISODE_INFO_SUMS`` info values to the running sums; report finished
        episodes' sums in ``stats.info_sums``."""
        for key, name in EPISODE_INFO_SUMS.items():
            if key not in infos and key not in self.episode_info:
                continue
            sums = self.episode_info.setdefault(key, np.zeros(self.num_envs))
            if key in infos:
                present = valid & np.asarray(infos.get(f"_{key}", np.ones(self.num_envs, bool)), bool)
                sums += np.where(present, np.asarray(infos[key], dtype=np.float64), 0.0)
            stats.info_sums.setdefault(name, []).extend(float(x) for x in sums[done])
            sums[done] = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {
            "obs_normalizer": self.obs_normalizer.state_dict(),
            "reward_scaler": self.reward_scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        self.reward_scaler.load_state_dict(state["reward_scaler"])


def _complete_render_states(buffers: dict[str, np.ndarray], recorded: np.ndarray) -> None:
    """Render states (frames) switched on during the rollout miss its first steps: they hold the
    first one recorded. Any other gap (switched off during it) drops them all: no black clips."""
    if "render_states" not in buffers:
        return
    first = int(np.argmax(recorded))
    if not recorded[first:].all():
        del buffers["render_states"]
        return
    buffers["render_states"][:first] = buffers["render_states"][first]


def _render_state(info: dict[str, Any]) -> np.ndarray | None:
    """The (B, K) ``render_state`` a vector env's info holds (float64), or its (B, H, W, 3) uint8
    frames, if its envs report one."""
    state = info.get(RENDER_STATE_KEY)
    if state is None:
        return None
    state = np.asarray(state)
    return state if state.dtype == np.uint8 else state.astype(np.float64)
