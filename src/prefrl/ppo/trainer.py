"""The PPO trainer: ``train_iteration() -> metrics`` (collect, advantages, update) and ``train()``.
It neither logs nor writes files: whoever drives it (``train()``, or the application's loop) does."""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from prefrl.datatypes import PPOBatch, Rollout
from prefrl.envs.make import make_vec_env
from prefrl.envs.normalize import ObsNormalizer, RewardScaler
from prefrl.masked import masked_whiten
from prefrl.optim import adam
from prefrl.ppo.config import PPOConfig
from prefrl.ppo.evaluate import evaluate_policy
from prefrl.ppo.gae import gae
from prefrl.ppo.losses import entropy_bonus, explained_variance, policy_loss, value_loss
from prefrl.ppo.policies import check_policy_inputs, policy_for
from prefrl.ppo.rollout import EpisodeStats, RewardFn, RolloutCollector

RETURN_WINDOW = 20
"""Episodes in the moving window of ``env/return_window``."""


def make_batch(rollout: Rollout, gamma: float, gae_lambda: float) -> PPOBatch:
    """GAE on a (B, T) rollout, then the valid transitions flattened to (N, ...)."""
    advantages, returns = gae(
        rollout.rewards,
        rollout.values,
        rollout.next_values,
        rollout.terminated,
        rollout.truncated,
        gamma,
        gae_lambda,
        valid=rollout.valid,
    )
    keep = rollout.valid
    return PPOBatch(
        obs=rollout.obs[keep],
        actions=rollout.actions[keep],
        logprobs=rollout.logprobs[keep],
        values=rollout.values[keep],
        advantages=advantages[keep],
        returns=returns[keep],
    )


class PPOTrainer:
    """PPO on a gymnasium vector env. ``envs`` defaults to ``make_vec_env(config.env_id, ...)``;
    ``reward_fn`` (optional) replaces the env's reward (a learned one). Its ``state_dict`` is the
    checkpoint that ``load_agent`` and ``prefrl video`` read."""

    def __init__(
        self,
        config: PPOConfig,
        envs: gym.vector.VectorEnv | None = None,
        reward_fn: RewardFn | None = None,
    ) -> None:
        self.config = config
        self.device = torch.device(config.device)
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        self.envs = envs or make_vec_env(
            config.env_id, config.num_envs, config.vectorization, **config.env_kwargs
        )
        obs_space = self.envs.single_observation_space
        assert isinstance(obs_space, gym.spaces.Box)
        check_policy_inputs(
            obs_space, self.envs.single_action_space, config.normalize_obs, config.env_id, config.use_sde,
            config.mixed_precision,
        )  # fmt: skip
        self.policy = policy_for(config, obs_space, self.envs.single_action_space).to(self.device)
        self.acting_device = torch.device(config.acting_device)
        self.rollout_policy = (
            self.policy
            if self.acting_device == self.device
            else copy.deepcopy(self.policy).to(self.acting_device)
        )
        """The policy that acts in the envs: ``policy`` itself, or a copy on ``acting_device`` that
        gets the new weights after each update."""
        self.parameters = list(self.policy.parameters())
        """Cached: ``Module.parameters()`` walks the module tree on every call (once per minibatch)."""
        self.optimizer = adam(self.parameters, config.learning_rate, eps=1e-5)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.rollout_generator = (
            self.generator
            if self.acting_device == self.device
            else torch.Generator(device=self.acting_device).manual_seed(config.seed)
        )
        self.collector = RolloutCollector(
            self.envs,
            ObsNormalizer(obs_space.shape, config.normalize_obs),
            RewardScaler(self.envs.num_envs, config.gamma, config.normalize_reward),
            seed=config.seed,
            device=self.acting_device,
            reward_fn=reward_fn,
            output_device=self.device,
            clip_reward=config.clip_reward,
            terminal_on_life_loss=config.terminal_on_life_loss,
            sde_sample_freq=config.sde_sample_freq,
        )
        self._rollout_seconds = 0.0
        self.iteration = 0
        self.global_step = 0
        self.recent_returns: deque[float] = deque(maxlen=RETURN_WINDOW)

    @property
    def done(self) -> bool:
        return self.iteration >= self.config.num_iterations

    def train(self) -> dict[str, float]:
        """Iterate until ``config.total_timesteps``; the last iteration's metrics, with the
        deterministic evaluation's (``num_eval_episodes`` > 0)."""
        metrics: dict[str, float] = {}
        while not self.done:
            metrics = self.train_iteration()
        if self.config.num_eval_episodes > 0:
            metrics.update(self.evaluate(self.config.num_eval_episodes))
        return metrics

    def train_iteration(self) -> dict[str, float]:
        """One rollout and one PPO update on the env's reward (or ``reward_fn``'s); the metrics."""
        rollout, episodes = self.collect_rollout()
        return self.update_from(rollout, episodes)

    def collect_rollout(self, rewards: bool = True) -> tuple[Rollout, EpisodeStats]:
        """Act in the envs for ``num_steps`` steps with the current policy (``rewards=False``: the
        agent's rewards are left to ``collector.with_rewards``)."""
        start = time.perf_counter()
        self.rollout_policy.eval()
        rollout, episodes = self.collector.collect(
            self.rollout_policy, self.config.num_steps, self.rollout_generator, rewards
        )
        self._rollout_seconds = time.perf_counter() - start
        return rollout, episodes

    def update_from(self, rollout: Rollout, episodes: EpisodeStats) -> dict[str, float]:
        """The PPO update on a collected rollout (trained on its ``rewards``); the metrics."""
        cfg = self.config
        t1 = time.perf_counter()
        lr = cfg.learning_rate * (1.0 - self.iteration / cfg.num_iterations if cfg.anneal_lr else 1.0)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = make_batch(rollout, cfg.gamma, cfg.gae_lambda)
        self.policy.train()
        metrics = self.update(batch)
        if self.rollout_policy is not self.policy:
            self.rollout_policy.load_state_dict(self.policy.state_dict())
        t2 = time.perf_counter()
        self.iteration += 1
        self.global_step += cfg.batch_size
        self.recent_returns.extend(episodes.returns)
        metrics.update(
            {
                "ppo/learning_rate": lr,
                "ppo/explained_variance": explained_variance(batch.values, batch.returns),
                "env/num_episodes": float(len(episodes.returns)),
                "time/rollout_s": self._rollout_seconds,
                "time/update_s": t2 - t1,
                "time/steps_per_second": cfg.batch_size / (t2 - t1 + self._rollout_seconds),
            }
        )
        if episodes.returns:
            metrics["env/episode_return"] = float(np.mean(episodes.returns))
            metrics["env/episode_length"] = float(np.mean(episodes.lengths))
        for name, sums in episodes.info_sums.items():
            if sums:
                metrics[f"env/{name}"] = float(np.mean(sums))
        if self.recent_returns:
            metrics["env/return_window"] = float(np.mean(self.recent_returns))
        metrics["iteration"] = float(self.iteration)
        return metrics

    def update(self, batch: PPOBatch) -> dict[str, float]:
        """``update_epochs`` passes of minibatch PPO; stops early past ``target_kl``. The per-minibatch
        statistics stay tensors until the end (one conversion instead of one per value and step)."""
        cfg = self.config
        rows: list[torch.Tensor] = []
        names: list[str] = []
        stop = False
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(len(batch), generator=self.generator, device=self.device)
            for idx in torch.tensor_split(perm, cfg.num_minibatches):
                loss, stats = self.minibatch_loss(batch.index(idx))
                if cfg.target_kl is not None and stats["ppo/approx_kl"].item() > cfg.target_kl:
                    stop = True
                    break
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                stats["ppo/grad_norm"] = torch.nn.utils.clip_grad_norm_(
                    self.parameters, cfg.max_grad_norm, foreach=True
                )
                self.optimizer.step()
                names = list(stats)
                rows.append(torch.stack([value.detach().float() for value in stats.values()]))
            if stop:
                break
        means = torch.stack(rows).mean(0).tolist() if rows else []
        metrics = dict(zip(names, means, strict=True))
        metrics["ppo/num_updates"] = float(len(rows))
        metrics["ppo/early_stopped"] = float(stop)
        return metrics

    def minibatch_loss(self, mb: PPOBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The PPO loss of a minibatch and its 0-d statistics (detached tensors)."""
        cfg = self.config
        logprobs, entropy, values = self.policy.evaluate(mb.obs, mb.actions)
        advantages = masked_whiten(mb.advantages) if cfg.norm_adv else mb.advantages
        pg_loss, pg_stats = policy_loss(logprobs, mb.logprobs, advantages, cfg.clip_coef)
        v_loss = value_loss(values, mb.values, mb.returns, cfg.clip_coef if cfg.clip_vloss else None)
        ent = entropy_bonus(entropy)
        loss = pg_loss - cfg.ent_coef * ent + cfg.vf_coef * v_loss
        stats = {
            "ppo/policy_loss": pg_loss.detach(),
            "ppo/value_loss": v_loss.detach(),
            "ppo/entropy": ent.detach(),
            "ppo/approx_kl": pg_stats["approx_kl"],
            "ppo/clip_frac": pg_stats["clip_frac"],
        }
        return loss, stats

    def evaluate(self, num_episodes: int, seed: int | None = None) -> dict[str, float]:
        """Deterministic policy (argmax / Gaussian mean), frozen normaliser, fresh seeded env."""
        returns = evaluate_policy(
            self.rollout_policy,
            self.collector.obs_normalizer,
            self.config.env_id,
            num_episodes,
            seed=self.config.seed + 100_000 if seed is None else seed,
            env_kwargs=self.config.env_kwargs,
        )
        return {
            "eval/return_mean": float(np.mean(returns)),
            "eval/return_std": float(np.std(returns)),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.config),
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "collector": self.collector.state_dict(),
            "rng": {
                "generator": self.generator.get_state(),
                "rollout_generator": self.rollout_generator.get_state(),
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
            "iteration": self.iteration,
            "global_step": self.global_step,
            "recent_returns": list(self.recent_returns),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint; the envs start new episodes (seeded by the iteration)."""
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.collector.load_state_dict(state["collector"])
        rng = state["rng"]
        self.generator.set_state(rng["generator"])
        if "rollout_generator" in rng:  # checkpoints before rollout_device have one generator
            self.rollout_generator.set_state(rng["rollout_generator"])
        if self.rollout_policy is not self.policy:
            self.rollout_policy.load_state_dict(self.policy.state_dict())
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.iteration = int(state["iteration"])
        self.global_step = int(state["global_step"])
        self.recent_returns = deque(state["recent_returns"], maxlen=RETURN_WINDOW)
        self.collector.reset(seed=self.config.seed + self.iteration)
