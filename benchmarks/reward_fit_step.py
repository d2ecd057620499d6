"""Time of one reward-model refit step (forward and backward of the ensemble over a minibatch of
pairs of segments), float32 against bfloat16 mixed precision (``--reward-trainer.mixed-precision``),
at the segment lengths of the tasks in benchmarks/RESULTS.md, on one torch thread and on more
(``--threads``; the loop fits on one thread per core, ``--reward-trainer.num-threads``), and the
ensemble's matmuls one per member (``EnsembleMLP``) against one batched matmul over the members
(``baddbmm``, what it ran before the eleventh session).

    python benchmarks/reward_fit_step.py [--repeats 20] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from prefrl.reward_model.nets import LEAKY_SLOPE, EnsembleMLP

CASES = (("Hopper-v5", 188, 14), ("Hopper-v5, --segment-length 50", 50, 14), ("Pendulum-v1", 30, 4))
"""(task, steps per segment, observation + action size)."""


def batched_forward(net: EnsembleMLP, x: torch.Tensor) -> torch.Tensor:
    """(E, N, in) -> (E, N): the same sums as ``net(x)``, each layer one batched matmul over members."""
    for layer in net.hidden:
        x = torch.nn.functional.leaky_relu(torch.baddbmm(layer.bias, x, layer.weight), LEAKY_SLOPE)
    return torch.baddbmm(net.out.bias, x, net.out.weight).squeeze(-1)


def step_ms(net: EnsembleMLP, x: torch.Tensor, mixed: bool, repeats: int, batched: bool = False) -> float:
    def once() -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=mixed):
            out = batched_forward(net, x) if batched else net(x)
        out.sum().backward()

    for _ in range(3):
        once()
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=64, help="pairs per minibatch (the default batch)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch threads to time")
    args = parser.parse_args()
    print(
        "| task | steps per segment | threads | float32 ms | bfloat16 ms | bf16 speed-up | float32 speed-up "
        "over 1 thread | batched matmul ms | per member speed-up |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for task, steps, dim in CASES:
        net = EnsembleMLP(3, dim)
        x = torch.randn(3, 2 * args.pairs * steps, dim)
        single = None
        for threads in args.threads:
            torch.set_num_threads(threads)
            full, mixed = (step_ms(net, x, m, args.repeats) for m in (False, True))
            batched = step_ms(net, x, False, args.repeats, batched=True)
            single = single or full
            print(
                f"| {task} | {steps} | {threads} | {full:.1f} | {mixed:.1f} | {full / mixed:.1f}x "
                f"| {single / full:.2f}x | {batched:.1f} | {batched / full:.2f}x |"
            )


if __name__ == "__main__":
    main()
