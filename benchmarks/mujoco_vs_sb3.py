"""PPO on MuJoCo, prefrl against Stable-Baselines3, side by side: return and env steps/s.

For each env and seed the two libraries run one after the other in this process, with the same
hyperparameters: prefrl's preset for the env (src/prefrl/ppo/presets.py: CleanRL / the PPO paper's
MuJoCo settings) and SB3's PPO set to the same values (1 env, 2048-step rollouts, 10 epochs of 32
minibatches of 64, lr 3e-4 annealed linearly to 0, gamma 0.99, lambda 0.95, clip 0.2, no entropy
bonus, vf_coef 0.5, max grad norm 0.5, separate 64-64 tanh actor and critic with orthogonal init,
state-independent log-std starting at 0, Adam eps 1e-5, observation and reward normalisation with
clip 10 via VecNormalize). One difference is left as each library has it: prefrl clips the value
loss (CleanRL's max of clipped and unclipped), SB3 does not (its ``clip_range_vf`` is another formula);
``--libraries prefrl-unclipped-value`` runs prefrl without it.

Reported per run: ``final`` = mean of the last 20 training-episode returns, ``eval`` = mean of a
10-episode deterministic evaluation with the observation statistics frozen, and env steps/s over the
training loop (rollouts and updates; construction and the evaluation are not timed). Rows are
appended to ``--out`` as runs finish, so a killed benchmark keeps what it had; the table is printed
from every row found there.

    python benchmarks/mujoco_vs_sb3.py [--envs Hopper-v5 HalfCheetah-v5] [--seeds 1 2 3] \
        [--steps 1000000] [--threads 1] [--sb3-threads 2] [--out benchmarks/out/mujoco_vs_sb3.jsonl]
    python benchmarks/mujoco_vs_sb3.py --table-only
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.ppo.presets import PRESETS, preset_config
from prefrl.ppo.trainer import PPOTrainer

WINDOW = 20
EVAL_EPISODES = 10
EVAL_SEED_OFFSET = 100_000


def run_prefrl(env_id: str, seed: int, steps: int, **overrides: Any) -> dict[str, Any]:
    config = preset_config(
        env_id, total_timesteps=steps, seed=seed, num_eval_episodes=0, checkpoint_every=10**9, **overrides
    )
    trainer = PPOTrainer(config)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    evaluation = trainer.evaluate(EVAL_EPISODES, seed=seed + EVAL_SEED_OFFSET)
    trainer.envs.close()
    return {
        "final": float(np.mean(trainer.recent_returns)),
        "eval": evaluation["eval/return_mean"],
        "steps": trainer.global_step,
        "seconds": seconds,
    }


def run_sb3(env_id: str, seed: int, steps: int) -> dict[str, Any]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    hp = {**PRESETS[env_id][1]}
    assert hp["num_envs"] == 1 and hp.get("anneal_lr", True), "the SB3 side mirrors the MuJoCo preset"
    env = VecNormalize(
        make_vec_env(env_id, n_envs=1, seed=seed), gamma=hp["gamma"], clip_obs=10.0, clip_reward=10.0
    )
    lr = float(hp["learning_rate"])
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=hp["num_steps"],
        batch_size=hp["num_steps"] // hp["num_minibatches"],
        n_epochs=hp["update_epochs"],
        gamma=hp["gamma"],
        gae_lambda=hp["gae_lambda"],
        clip_range=hp["clip_coef"],
        ent_coef=hp["ent_coef"],
        vf_coef=hp["vf_coef"],
        max_grad_norm=hp["max_grad_norm"],
        learning_rate=lambda remaining: remaining * lr,
        policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": torch.nn.Tanh},
        seed=seed,
        device="cpu",
        verbose=0,
    )

    class Returns(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.returns: deque[float] = deque(maxlen=WINDOW)

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(float(info["episode"]["r"]))
            return True

    callback = Returns()
    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=callback)
    seconds = time.perf_counter() - start
    eval_env = VecNormalize(
        make_vec_env(env_id, n_envs=1, seed=seed + EVAL_SEED_OFFSET), training=False, norm_reward=False
    )
    eval_env.obs_rms = env.obs_rms
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True)
    env.close()
    eval_env.close()
    return {
        "final": float(np.mean(callback.returns)),
        "eval": float(returns),
        "steps": int(model.num_timesteps),
        "seconds": seconds,
    }


RUNNERS: dict[str, Callable[[str, int, int], dict[str, Any]]] = {
    "prefrl": run_prefrl,
    "SB3": run_sb3,
    # prefrl with SB3's value loss (unclipped): the one setting the preset and SB3 differ in
    "prefrl-unclipped-value": lambda env_id, seed, steps: run_prefrl(env_id, seed, steps, clip_vloss=False),
}


def _value(run: dict[str, Any], key: str) -> float:
    return run["steps"] / run["seconds"] if key == "speed" else run[key]


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: the median over seeds of each library's returns and steps/s per env, with the ratio
    to SB3's median, and every run below it."""
    runs: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        runs[row["env_id"], row["library"]][row["seed"]] = row
    lines = [
        "| env | library | seeds | final (median) | eval (median) | steps/s (median) "
        "| vs SB3: final / eval / steps/s |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    keys = ("final", "eval", "speed")
    for (env_id, library), by_seed in sorted(runs.items()):
        med = {k: statistics.median(_value(r, k) for r in by_seed.values()) for k in keys}
        sb3 = runs.get((env_id, "SB3"), {})
        ratio = ""
        if sb3 and library != "SB3":
            base = {k: statistics.median(_value(r, k) for r in sb3.values()) for k in keys}
            ratio = " / ".join(f"{med[k] / base[k]:.2f}x" for k in keys)
        lines.append(
            f"| {env_id} | {library} | {','.join(map(str, sorted(by_seed)))} | {med['final']:.0f} | "
            f"{med['eval']:.0f} | {med['speed']:.0f} | {ratio} |"
        )
    lines += [
        "",
        "| env | library | seed | steps | final | eval | steps/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (env_id, library), by_seed in sorted(runs.items()):
        for seed, r in sorted(by_seed.items()):
            lines.append(
                f"| {env_id} | {library} | {seed} | {r['steps']} | {r['final']:.0f} | {r['eval']:.0f} | "
                f"{_value(r, 'speed'):.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=["Hopper-v5", "HalfCheetah-v5"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--libraries", nargs="+", default=["prefrl", "SB3"], choices=list(RUNNERS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads for prefrl (its CLI's default)")
    parser.add_argument(
        "--sb3-threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads for SB3 (torch's default)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/mujoco_vs_sb3.jsonl"))
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    if not args.table_only:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for env_id in args.envs:
            for seed in args.seeds:
                for library in args.libraries:
                    threads = args.sb3_threads if library == "SB3" else args.threads
                    torch.set_num_threads(threads)
                    result = RUNNERS[library](env_id, seed, args.steps)
                    row = {"env_id": env_id, "seed": seed, "library": library, **result, "threads": threads}
                    with args.out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    print(table(rows))


if __name__ == "__main__":
    main()
