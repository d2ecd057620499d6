"""A trained agent's true return with its mean action (as ``prefrl ppo``'s evaluation) against its
sampled actions (as its training episodes), on the same seeded episodes: tells a policy that needs
its mean action apart from one that learned slowly.

    python benchmarks/sampled_vs_mean_action.py RUN_DIR [RUN_DIR ...] [--episodes 20] [--seed 1000]
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import numpy as np
import torch

from prefrl.ppo.evaluate import episode_returns, load_agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()
    print("| run | mean action | sampled actions | sampled, worst episode |")
    print("|---|---:|---:|---:|")
    for run in args.run_dirs:
        config, agent = load_agent(run / "checkpoints" / "last.pt")
        torch.manual_seed(args.seed)  # the sampled actions' draws
        mean = episode_returns(agent.act, config.env_id, args.episodes, args.seed, config.env_kwargs)
        sampled = episode_returns(
            functools.partial(agent.act, deterministic=False),
            config.env_id,
            args.episodes,
            args.seed,
            config.env_kwargs,
        )
        print(f"| {run.name} | {np.mean(mean):.0f} | {np.mean(sampled):.0f} | {min(sampled):.0f} |")


if __name__ == "__main__":
    main()
