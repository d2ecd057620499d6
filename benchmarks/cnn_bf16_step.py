"""Time of one forward and backward of PPO's Nature-CNN actor-critic over a minibatch of frames, float32
against its trunk in bfloat16 (``--mixed-precision``), alternating, on this machine's CPU.

    python benchmarks/cnn_bf16_step.py [--batch 256] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

from prefrl.ppo.cnn import CnnActorCritic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    obs = torch.randint(0, 256, (args.batch, 4, 84, 84), dtype=torch.uint8)
    actions = torch.randint(0, 4, (args.batch,))
    for round_ in range(2):
        for mixed in (False, True):
            net = CnnActorCritic(space, gym.spaces.Discrete(4), mixed_precision=mixed)

            def step(net: CnnActorCritic = net) -> None:
                sum(out.sum() for out in net.evaluate(obs, actions)).backward()

            for _ in range(2):
                step()
            start = time.perf_counter()
            for _ in range(args.repeats):
                step()
            ms = (time.perf_counter() - start) / args.repeats * 1000
            print(f"round {round_ + 1} {'bf16 trunk' if mixed else 'float32'}: {ms:.0f} ms a step")


if __name__ == "__main__":
    main()
