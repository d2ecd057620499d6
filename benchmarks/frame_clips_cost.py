"""What recording frames for people's clips costs a rollout, for envs without a simulator state to set
(clips of them are made from the frames): vector-env steps/s with and without ``render_states``,
random actions, one after the other in one process.

    .venv/bin/python benchmarks/frame_clips_cost.py --env-id LunarLander-v3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prefrl.envs.make import make_vec_env  # noqa: E402


def steps_per_second(env_id: str, num_envs: int, steps: int, render_states: bool) -> float:
    envs = make_vec_env(env_id, num_envs, "sync", render_states=render_states)
    envs.reset(seed=0)
    envs.action_space.seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        envs.step(envs.action_space.sample())
    seconds = time.perf_counter() - start
    envs.close()
    return steps * num_envs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="LunarLander-v3")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    plain = steps_per_second(args.env_id, args.num_envs, args.steps, False)
    frames = steps_per_second(args.env_id, args.num_envs, args.steps, True)
    print(
        f"{args.env_id}: {plain:.0f} env steps/s plain, {frames:.0f} recording frames ({frames / plain:.2f}x)"
    )


if __name__ == "__main__":
    main()
