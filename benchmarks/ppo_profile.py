"""Where a prefrl PPO run spends its time: env steps, policy forward, the rest of the rollout, and the
update split into forward (losses), backward, gradient clipping, optimizer step and the rest.

Timers wrap the env's ``step``, the policy's acting calls, ``Tensor.backward``, ``clip_grad_norm_`` and the
optimizer's ``step`` of one trainer (a wrapper costs ~1 us a call); everything else in a phase is
reported as its "other". Construction is not timed, nor the final evaluation.

    python benchmarks/ppo_profile.py [--env-id Hopper-v5] [--steps 40960] [--threads 1] [--output f.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from prefrl.ppo.presets import preset_config
from prefrl.ppo.trainer import PPOTrainer

TIMES: dict[str, float] = defaultdict(float)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[name] += time.perf_counter() - start

    return wrapper


def profile(env_id: str, steps: int, threads: int, overrides: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(threads)
    config = preset_config(
        env_id, total_timesteps=steps, num_eval_episodes=0, checkpoint_every=10**9, **overrides
    )
    trainer = PPOTrainer(config)
    envs = trainer.envs
    envs.step = timed("env_step", envs.step)  # type: ignore[method-assign]
    # acting: one policy call per env step (``sample``; ``act`` before it existed) and, where the
    # collector has it, the batched log-probs and values of the whole rollout
    policy, collector = trainer.policy, trainer.collector
    step_call = "sample" if hasattr(policy, "sample") else "act"
    setattr(policy, step_call, timed("policy_act", getattr(policy, step_call)))
    if hasattr(collector, "_logprobs_and_values"):
        collector._logprobs_and_values = timed("policy_act", collector._logprobs_and_values)  # type: ignore[method-assign]
    trainer.optimizer.step = timed("optimizer_step", trainer.optimizer.step)  # type: ignore[method-assign]
    original_backward = torch.Tensor.backward
    original_clip = torch.nn.utils.clip_grad_norm_
    torch.Tensor.backward = timed("backward", original_backward)  # type: ignore[method-assign]
    torch.nn.utils.clip_grad_norm_ = timed("clip_grad_norm", original_clip)
    try:
        start = time.perf_counter()
        while not trainer.done:
            metrics = trainer.train_iteration()
            TIMES["rollout"] += metrics["time/rollout_s"]
            TIMES["update"] += metrics["time/update_s"]
        total = time.perf_counter() - start
    finally:
        torch.Tensor.backward = original_backward  # type: ignore[method-assign]
        torch.nn.utils.clip_grad_norm_ = original_clip
        envs.close()
    t = dict(TIMES)
    breakdown = {
        "env_step": t["env_step"],
        "policy_act": t["policy_act"],
        "rollout_other": t["rollout"] - t["env_step"] - t["policy_act"],
        "update_backward": t["backward"],
        "update_optimizer": t["optimizer_step"],
        "update_clip": t["clip_grad_norm"],
        "update_other": t["update"] - t["backward"] - t["optimizer_step"] - t["clip_grad_norm"],
        "logging_checkpoint": total - t["rollout"] - t["update"],
    }
    return {
        "env_id": env_id,
        "steps": trainer.global_step,
        "threads": threads,
        "total_s": total,
        "steps_per_s": trainer.global_step / total,
        "breakdown_s": breakdown,
    }


def print_table(result: dict[str, Any]) -> None:
    total = result["total_s"]
    print(
        f"{result['env_id']}: {result['steps']} steps in {total:.1f} s = "
        f"{result['steps_per_s']:.0f} steps/s (torch {result['threads']} thread(s))"
    )
    print("| part | s | share | us per env step |")
    print("|---|---:|---:|---:|")
    for name, seconds in result["breakdown_s"].items():
        print(
            f"| {name} | {seconds:.2f} | {100 * seconds / total:.0f}% | "
            f"{1e6 * seconds / result['steps']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env-id", default="Hopper-v5")
    parser.add_argument("--steps", type=int, default=40_960)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    result = profile(args.env_id, args.steps, args.threads, {})
    print_table(result)
    if args.output:
        args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
