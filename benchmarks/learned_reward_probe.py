"""What a preference run's learned reward says about behaviour, against the env's true reward: the
diagnostics behind "the reward model ranks segments right, yet the agent stops short of PPO" in
benchmarks/RESULTS.md. Three probes, each on MuJoCo runs of ``prefrl rlhp`` / ``prefrl ppo``:

- ``returns``: the learned and the true return of one 1000-step episode of each agent (deterministic
  and sampled actions) under the reward model of ``--reward-run``: does it rank a better agent
  (e.g. PPO's on the true reward) higher, and by how much?
- ``steps``: along the reward run's own agent's sampled episode, the correlation of the learned and
  the true reward per step, at lags, and over moving windows.
- ``perturb``: one action replaced by mean + ``--sigma`` x noise, then ``--horizon`` steps of the
  agent's mean actions from the same simulator state: the change of the learned and of the true
  return of those steps, in units of each reward's per-step std along the path (what the policy
  gradient on the action spread sees).

    python benchmarks/learned_reward_probe.py returns --reward-run RUN [--agents RUN_A RUN_B ...]
    python benchmarks/learned_reward_probe.py steps --reward-run RUN
    python benchmarks/learned_reward_probe.py perturb --reward-run RUN [--sigma 0.5] [--horizon 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from prefrl.envs.learned_reward import load_reward_model
from prefrl.envs.make import make_env
from prefrl.ppo.evaluate import Agent, load_agent
from prefrl.reward_model.ensemble import RewardModel

EPISODE_STEPS = 1000


def agent_and_env(run: Path) -> tuple[Agent, object]:
    config, agent = load_agent(run / "checkpoints" / "last.pt")
    return agent, make_env(config.env_id, **config.env_kwargs)


def learned(model: RewardModel, obs: list, actions: list) -> np.ndarray:
    """(T,) the agent's normalised learned reward of these steps."""
    with torch.no_grad():
        x = torch.as_tensor(np.array(obs), dtype=torch.float32)
        return model(x, torch.as_tensor(np.array(actions))).numpy()


def episode(agent: Agent, env, deterministic: bool, seed: int = 7) -> tuple[list, list, np.ndarray]:
    """One episode of at most EPISODE_STEPS: observations, actions, true rewards."""
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards = [], [], []
    for _ in range(EPISODE_STEPS):
        action = np.asarray(agent.act(obs, deterministic=deterministic), dtype=np.float32)
        observations.append(obs)
        actions.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            break
    return observations, actions, np.asarray(rewards)


def probe_returns(model: RewardModel, runs: list[Path]) -> None:
    print("| agent | actions | true return | learned return |\n|---|---|---:|---:|")
    for run in runs:
        agent, env = agent_and_env(run)
        for deterministic in (True, False):
            obs, actions, rewards = episode(agent, env, deterministic)
            kind = "mean" if deterministic else "sampled"
            print(f"| {run.name} | {kind} | {rewards.sum():.0f} | {learned(model, obs, actions).sum():.0f} |")


def probe_steps(model: RewardModel, run: Path) -> None:
    agent, env = agent_and_env(run)
    obs, actions, rewards = episode(agent, env, deterministic=False)
    predicted = learned(model, obs, actions)
    for lag in (0, 1, 2):
        corr = np.corrcoef(predicted[lag:], rewards[: len(rewards) - lag])[0, 1]
        print(f"corr(learned reward at t+{lag}, true reward at t) = {corr:.3f}")
    for width in (1, 5, 25):
        kernel = np.ones(width) / width
        smooth = (np.convolve(predicted, kernel, "valid"), np.convolve(rewards, kernel, "valid"))
        print(f"mean over {width:2d} steps: corr {np.corrcoef(*smooth)[0, 1]:.3f}")


def probe_perturb(model: RewardModel, run: Path, sigma: float, horizon: int, states: int = 150) -> None:
    agent, env = agent_and_env(run)
    sim = env.unwrapped  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)

    def path(first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        obs, action, observations, actions, rewards = sim._get_obs(), first, [], [], []
        for i in range(horizon + 1):
            if i > 0:
                action = np.asarray(agent.act(obs), dtype=np.float32)
            observations.append(obs)
            actions.append(action)
            obs, reward, *_ = env.step(action)  # type: ignore[attr-defined]
            rewards.append(reward)
        return learned(model, observations, actions), np.asarray(rewards)

    obs, _ = env.reset(seed=3)  # type: ignore[attr-defined]
    for _ in range(100):  # past the start
        obs, *_ = env.step(np.asarray(agent.act(obs), dtype=np.float32))  # type: ignore[attr-defined]
    changes, along = [], []
    for _ in range(states):
        qpos, qvel = sim.data.qpos.copy(), sim.data.qvel.copy()
        mean = np.asarray(agent.act(obs), dtype=np.float32)
        base = path(mean)
        along.append(base)
        for _ in range(4):
            sim.set_state(qpos, qvel)
            noisy = np.clip(mean + sigma * rng.standard_normal(mean.shape).astype(np.float32), -1, 1)
            changes.append([new.sum() - old.sum() for new, old in zip(path(noisy), base, strict=True)])
        sim.set_state(qpos, qvel)
        obs, *_ = env.step(mean)  # type: ignore[attr-defined]
    change = np.asarray(changes)
    scale = [np.concatenate([a[i] for a in along]).std() for i in (0, 1)]
    for i, name in enumerate(("learned", "true")):
        mean_change, spread = change[:, i].mean() / scale[i], change[:, i].std() / scale[i]
        print(f"{name:8s} reward: change {mean_change:+.3f} std, spread {spread:.3f} std ({horizon} steps)")
    print(f"correlation of the two changes: {np.corrcoef(change[:, 0], change[:, 1])[0, 1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("probe", choices=["returns", "steps", "perturb"])
    parser.add_argument("--reward-run", type=Path, required=True, help="a prefrl rlhp run directory")
    parser.add_argument("--agents", type=Path, nargs="*", default=[], help="run directories (returns)")
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--horizon", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_reward_model(args.reward_run)
    if args.probe == "returns":
        probe_returns(model, [args.reward_run, *args.agents])
    elif args.probe == "steps":
        probe_steps(model, args.reward_run)
    else:
        probe_perturb(model, args.reward_run, args.sigma, args.horizon)


if __name__ == "__main__":
    main()
