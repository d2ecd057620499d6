"""PPO from scratch on a frozen learned reward: is a preference run's failure the learned reward's shape
(PPO on it, held fixed, fails too) or the loop's (the reward moving as it is refitted)? And does a
reward on the next observation, r(s_{t+1}), lead PPO further than r(s_t, a_t)? The diagnostics behind
the Swimmer-v5 rows of benchmarks/RESULTS.md.

- ``refit``: fit a fresh reward model (the library's fit, ``--epochs`` passes) on every label of a
  ``prefrl rlhp`` run with inputs ``obs_action`` (s_t, a_t) or ``next_obs`` (s_{t+1}: an observation-only
  model on each segment shifted by one step; both use the segments' first S - 1 steps), normalised on
  the steps of the first quarter of the labelled segments; saved whole with ``torch.save``.
- ``train``: ``prefrl ppo`` with the base env's preset and seed on the env paid by a frozen model (the
  run's own final one with ``--reward-run``, or a refitted one with ``--model``); the env's reward is
  logged as ``env/true_return``, and the mean of its last tenth of iterations printed.

    python benchmarks/frozen_reward_ppo.py refit --reward-run RUN --inputs next_obs --out next.pt
    python benchmarks/frozen_reward_ppo.py train --env-id Swimmer-v5 --model next.pt --seed 2 --run-dir OUT
    python benchmarks/frozen_reward_ppo.py train --env-id Swimmer-v5 --reward-run RUN --seed 2 --run-dir OUT2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from rich.console import Console

from prefrl.datatypes import ComparisonBatch
from prefrl.envs.learned_reward import LearnedReward, load_reward_model
from prefrl.ppo.config import PPOConfig
from prefrl.ppo.presets import preset_and_source
from prefrl.preferences.pool import ComparisonCache
from prefrl.preferences.store import PreferenceStore
from prefrl.reward_model.ensemble import RewardModel, RewardModelConfig
from prefrl.reward_model.trainer import RewardModelTrainer, RewardTrainerConfig

FROZEN_ID = "FrozenReward-v0"


class NextObsReward(LearnedReward):
    """``LearnedReward`` paying an observation-only model's reward of the observation after the step,
    r(s_{t+1}), rather than before it."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs), dtype=torch.float32)[None]
            learned = float(self.reward_model(x, torch.as_tensor(np.asarray(action))[None])[0])
        return obs, learned, terminated, truncated, {**info, "true_reward": float(reward)}


def refit(args: argparse.Namespace) -> None:
    labels = ComparisonCache(PreferenceStore(args.reward_run / "preferences.sqlite")).batch()
    assert labels is not None, f"{args.reward_run} has no comparisons"
    cut = slice(1, None) if args.inputs == "next_obs" else slice(None, -1)
    data = ComparisonBatch(
        labels.obs_1[:, cut],
        labels.actions_1[:, cut],
        labels.obs_2[:, cut],
        labels.actions_2[:, cut],
        labels.labels,
    )
    env_id = json.loads((args.reward_run / "config.json").read_text())["config"]["ppo"]["env_id"]
    env = gym.make(env_id)
    torch.manual_seed(args.seed)
    config = RewardModelConfig(inputs="obs" if args.inputs == "next_obs" else "obs_action")
    model = RewardModel(env.observation_space, env.action_space, config)
    trainer = RewardModelTrainer(model, RewardTrainerConfig(), torch.Generator().manual_seed(args.seed))
    metrics = trainer.fit(data, None, args.epochs)
    first = len(data) // 4
    model.fit_normalization(data.obs_1[:first].flatten(0, 1), data.actions_1[:first].flatten(0, 1))
    torch.save(model, args.out)
    print({k: round(v, 3) for k, v in metrics.items()}, "->", args.out)


def train(args: argparse.Namespace) -> None:
    from prefrl.cli.gym import run_ppo

    if args.model is not None:
        model = torch.load(args.model, weights_only=False)
    else:
        model = load_reward_model(args.reward_run)
    next_obs = model.action_dim == 0 and args.model is not None and args.next_obs
    wrapper = NextObsReward if next_obs else LearnedReward
    gym.register(FROZEN_ID, entry_point=lambda: wrapper(gym.make(args.env_id), model))  # type: ignore[arg-type]
    fields, source = preset_and_source(args.env_id)
    config = dataclasses.replace(
        PPOConfig(), **{**fields, "env_id": FROZEN_ID, "seed": args.seed, "total_timesteps": args.steps},
        vectorization="sync", num_eval_episodes=0,
    )  # fmt: skip
    paid = "r(s_t+1)" if next_obs else "r(s_t)" if model.action_dim == 0 else "r(s_t, a_t)"
    print(f"PPO with {source}, paid {paid} of the frozen model")
    run_ppo(config, args.run_dir, None, 1, Console())
    rows = [json.loads(line) for line in (args.run_dir / "metrics.jsonl").read_text().splitlines()]
    tail = [r["env/true_return"] for r in rows[-max(1, len(rows) // 10) :] if "env/true_return" in r]
    print(f"true return, the last tenth of the iterations: {np.mean(tail):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("refit")
    p.add_argument("--reward-run", type=Path, required=True)
    p.add_argument("--inputs", choices=("obs_action", "next_obs"), default="obs_action")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("train")
    t.add_argument("--env-id", required=True, help="the base env, whose PPO preset is used")
    t.add_argument("--model", type=Path, help="a model saved by `refit`")
    t.add_argument("--reward-run", type=Path, help="or the final reward model of this prefrl rlhp run")
    t.add_argument("--next-obs", action=argparse.BooleanOptionalAction, default=True,
                   help="an observation-only --model is paid on the next observation")  # fmt: skip
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--steps", type=int, default=301_056)
    t.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args()
    refit(args) if args.command == "refit" else train(args)


if __name__ == "__main__":
    main()
