"""PPO out of the box on every gymnasium built-in env with a flat Box observation: ``prefrl ppo`` with
no flags (its preset, or the defaults it chooses from the env's spaces) against Stable-Baselines3's
PPO with its own defaults (``PPO("MlpPolicy", env)``), same env, steps and seeds, in one invocation.

Reported per env: the median over seeds of the final training return (prefrl: the mean episode
return over the last tenth of its iterations; SB3: its Monitor's last 20 episodes), a deterministic
evaluation (10 episodes), env steps per second of the training loop (rollouts and updates), and the
env's own steps per second with random actions (the limit of any agent on this machine). Rows are
appended to ``OUT/results.jsonl`` as runs finish; a rerun skips runs already there.

    python benchmarks/ppo_sweep.py --steps 200000 --seeds 1 2 3 [--envs Hopper-v5 CartPole-v1] \
        [--out benchmarks/out/ppo_sweep]
    python benchmarks/ppo_sweep.py --table-only
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

ENVS = [
    "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1",
    "LunarLander-v3", "LunarLanderContinuous-v3", "BipedalWalker-v3",
    "Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Humanoid-v5", "HumanoidStandup-v5",
    "InvertedDoublePendulum-v5", "InvertedPendulum-v5", "Pusher-v5", "Reacher-v5", "Swimmer-v5",
    "Walker2d-v5",
]  # fmt: skip
"""gymnasium's built-in envs with a flat Box observation (classic control, Box2D, MuJoCo v5)."""


def run_prefrl(env_id: str, seed: int, steps: int, out: Path) -> dict:
    from prefrl.cli.demo import late_returns
    from prefrl.cli.logger import read_metrics

    run_dir = out / f"prefrl-{env_id}-s{seed}-{steps}"
    shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished run of a killed sweep
    argv = [str(Path(sys.executable).parent / "prefrl"), "ppo", "--env-id", env_id, "--seed", str(seed)]
    argv += ["--total-timesteps", str(steps), "--run-dir", str(run_dir)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = read_metrics(run_dir / "metrics.jsonl")
    seconds = sum(r.get("time/rollout_s", 0.0) + r.get("time/update_s", 0.0) for r in rows)
    trained = rows[-1]["step"]
    return {
        "final": late_returns(rows)[0],  # as prefrl demo reports it
        "eval": rows[-1].get("eval/return_mean"),
        "steps_per_s": trained / seconds,
    }


def run_sb3(env_id: str, seed: int, steps: int) -> dict:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    env = make_vec_env(env_id, n_envs=1, seed=seed)
    model = PPO("MlpPolicy", env, seed=seed, verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - start
    episodes = [info["r"] for info in model.ep_info_buffer][-20:]
    evaluation, _ = evaluate_policy(model, make_vec_env(env_id, n_envs=1, seed=seed + 100_000), 10)
    return {"final": float(np.mean(episodes)), "eval": float(evaluation), "steps_per_s": steps / seconds}


def random_steps_per_second(env_id: str, steps: int = 5000) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    seconds = time.perf_counter() - start
    env.close()
    return steps / seconds


def table(rows: list[dict]) -> str:
    lines = [
        "| env | prefrl final (eval) | SB3 final (eval) | prefrl steps/s | SB3 steps/s | ratio "
        "| env random steps/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for env_id in dict.fromkeys(r["env_id"] for r in rows):
        got = {
            lib: [r for r in rows if r["env_id"] == env_id and r["library"] == lib]
            for lib in ("prefrl", "sb3")
        }
        if not got["prefrl"] or not got["sb3"]:
            continue

        def med(lib: str, key: str, got: dict = got) -> float:
            return statistics.median(r[key] for r in got[lib])

        ratio = med("prefrl", "steps_per_s") / med("sb3", "steps_per_s")
        lines.append(
            f"| {env_id} | {med('prefrl', 'final'):.0f} ({med('prefrl', 'eval'):.0f}) | "
            f"{med('sb3', 'final'):.0f} ({med('sb3', 'eval'):.0f}) | {med('prefrl', 'steps_per_s'):.0f} | "
            f"{med('sb3', 'steps_per_s'):.0f} | {ratio:.2f}x | "
            f"{got['prefrl'][0]['env_random_steps_per_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=ENVS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/ppo_sweep"))
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    rows = [json.loads(line) for line in results.open()] if results.exists() else []
    have = {(r["env_id"], r["library"], r["seed"], r["steps"]) for r in rows}
    for env_id in [] if args.table_only else args.envs:
        limit = random_steps_per_second(env_id)
        for seed in args.seeds:
            for library in ("prefrl", "sb3"):
                if (env_id, library, seed, args.steps) in have:
                    continue
                run = run_prefrl if library == "prefrl" else None
                got = run(env_id, seed, args.steps, args.out) if run else run_sb3(env_id, seed, args.steps)
                row = {"env_id": env_id, "library": library, "seed": seed, "steps": args.steps, **got}
                row["env_random_steps_per_s"] = limit
                print(json.dumps(row), flush=True)
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                rows.append(row)
    print(table([r for r in rows if r["steps"] == args.steps]))


if __name__ == "__main__":
    main()
