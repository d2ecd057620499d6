"""PPO on Atari, prefrl against Stable-Baselines3's CnnPolicy, side by side: env steps/s and return.

For each env and seed the two libraries run one after the other in this process, with the same
hyperparameters: prefrl's Atari preset (src/prefrl/ppo/presets.py: the PPO paper's Table 5 as CleanRL's
ppo_atari) and SB3's PPO set to the same values (8 envs, 128-step rollouts, 4 epochs of 4 minibatches
of 256, lr 2.5e-4 annealed to 0, clip 0.1, entropy 0.01, vf 0.5, value-loss clipping 0.1, gamma 0.99,
lambda 0.95, max grad norm 0.5, Adam eps 1e-5, the Nature CNN). Envs: prefrl runs ALE's vectorised
C++ env (its preprocessing in C++ threads); SB3 its standard ``make_atari_env`` (AtariWrapper: no-ops,
4-frame skip with max-pooling, life loss terminal, FIRE reset, 84x84 grey, reward clipping; opencv) with
``VecFrameStack(4)``, over the same ``ALE/...-v5`` game with its own frame skip off (``frameskip=1``)
and the v5 sticky actions. Both see 4 frames per step.

``--libraries prefrl-bf16`` adds prefrl with its convolutional trunk in bfloat16
(``--mixed-precision``; heads, losses and Adam in float32), for CPUs with AMX or AVX512-BF16.

Reported per run: env steps/s over the training loop (rollouts and updates, construction not timed;
frames/s = 4x), and ``final`` = mean return of the last 20 whole games (SB3: its Monitor's episodes,
which are whole games under AtariWrapper). Rows are appended to ``--out`` as runs finish.

    python benchmarks/atari_vs_sb3.py [--envs ALE/Pong-v5 ALE/Breakout-v5] [--seeds 1] \
        [--steps 20480] [--threads 2] [--out benchmarks/out/atari_vs_sb3.jsonl]
    python benchmarks/atari_vs_sb3.py --table-only
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.ppo.presets import preset_config
from prefrl.ppo.trainer import PPOTrainer

WINDOW = 20
LIBRARIES = ("prefrl", "prefrl-bf16", "sb3")


def run_prefrl(env_id: str, seed: int, steps: int, mixed_precision: bool = False) -> dict[str, Any]:
    config = preset_config(
        env_id, total_timesteps=steps, seed=seed, num_eval_episodes=0, checkpoint_every=10**9,
        mixed_precision=mixed_precision,
    )  # fmt: skip
    trainer = PPOTrainer(config)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    trainer.envs.close()
    returns = list(trainer.recent_returns)
    return {
        "final": float(np.mean(returns)) if returns else None,
        "steps": trainer.global_step,
        "seconds": seconds,
    }


def run_sb3(env_id: str, seed: int, steps: int) -> dict[str, Any]:
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    envs = VecFrameStack(make_atari_env(env_id, n_envs=8, seed=seed, env_kwargs={"frameskip": 1}), 4)
    schedule = lambda progress: 2.5e-4 * progress  # noqa: E731
    model = PPO(
        "CnnPolicy", envs, n_steps=128, batch_size=256, n_epochs=4, learning_rate=schedule, gamma=0.99,
        gae_lambda=0.95, clip_range=0.1, clip_range_vf=0.1, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5,
        seed=seed, verbose=0, policy_kwargs={"optimizer_kwargs": {"eps": 1e-5}},
    )  # fmt: skip
    returns: deque[float] = deque(maxlen=WINDOW)

    class Games(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    returns.append(float(info["episode"]["r"]))
            return True

    start = time.perf_counter()
    model.learn(steps, callback=Games())
    seconds = time.perf_counter() - start
    envs.close()
    return {
        "final": float(np.mean(returns)) if returns else None,
        "steps": model.num_timesteps,
        "seconds": seconds,
    }


def table(rows: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["env"], row["library"])].append(row)
    lines = [
        "| env | library | seeds | env steps | steps/s (median) | final return (median) "
        "| ratio prefrl / SB3 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for env in sorted({env for env, _ in groups}):
        speed = {
            library: statistics.median(r["steps"] / r["seconds"] for r in groups[(env, library)])
            for library in LIBRARIES
            if (env, library) in groups
        }
        for library in speed:
            runs = groups[(env, library)]
            finals = [r["final"] for r in runs if r["final"] is not None]
            final = f"{statistics.median(finals):.1f}" if finals else "-"
            ratio = f"{speed[library] / speed['sb3']:.2f}x" if library != "sb3" and "sb3" in speed else ""
            lines.append(
                f"| {env} | {library} | {len(runs)} | {runs[0]['steps']} | {speed[library]:.0f} | {final} "
                f"| {ratio} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=["ALE/Pong-v5", "ALE/Breakout-v5"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--steps", type=int, default=20_480)
    parser.add_argument("--threads", type=int, default=2, help="torch threads, both libraries")
    parser.add_argument("--libraries", nargs="+", default=["prefrl", "sb3"], choices=LIBRARIES)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/atari_vs_sb3.jsonl"))
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    if not args.table_only:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(args.threads)
        for env_id in args.envs:
            for seed in args.seeds:
                for library in args.libraries:
                    if library == "sb3":
                        run = run_sb3(env_id, seed, args.steps)
                    else:
                        run = run_prefrl(env_id, seed, args.steps, library == "prefrl-bf16")
                    row = {"env": env_id, "library": library, "seed": seed, "threads": args.threads, **run}
                    print(json.dumps(row), flush=True)
                    with args.out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
    rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    print(table(rows))


if __name__ == "__main__":
    main()
