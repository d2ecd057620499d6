"""Memory and time per rank of SFT under each way of sharing the model between processes
(`--parallel ddp|fsdp|zero1|zero2|zero3`), on 2 CPU processes (gloo), one mode after another.

Per rank: the bytes of parameters and optimizer state the process holds after a few steps (counted
tensor by tensor: FSDP2 shards, ZeRO's parameter partitions, its fp32 master partitions and Adam
state); its resident memory above what it had before the model was built, once the trainer is set up
and at its peak during the steps (gradients, communication buffers and activations included: ZeRO
frees its gradients within the step, so they are not counted above); and the median time of a step.
The model: a GPT-2 of ``--layers`` x ``--width`` on the tiny task's tokenizer.

    python benchmarks/lm_parallel_memory.py                 # all five modes, ~40M parameters
    python benchmarks/lm_parallel_memory.py --modes ddp zero3 --layers 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

MODES = ("ddp", "fsdp", "zero1", "zero2", "zero3")


def tensor_bytes(tensors) -> int:
    """Bytes of distinct tensor storages (a view and its base counted once)."""
    seen, total = set(), 0
    for t in tensors:
        if t is None or not isinstance(t, torch.Tensor) or t.numel() == 0:
            continue
        t = getattr(t, "_local_tensor", t)  # FSDP2 DTensor: the local shard
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def held(trainer) -> dict[str, int]:
    """Bytes of parameters and optimizer state this rank holds."""
    from prefrl.lm import zero

    params = list(trainer.model.parameters())
    optimizer = trainer.optimizer
    if zero.is_engine(optimizer):
        inner = optimizer.optimizer  # DeepSpeed's ZeRO optimizer around the torch AdamW
        names = ("single_partition_of_fp32_groups", "fp32_partitioned_groups_flat")
        masters = [t for name in names for t in (getattr(inner, name, None) or [])]
        state = [v for s in inner.optimizer.state.values() for v in s.values()]
        local = [getattr(p, "ds_tensor", p) for p in params]
        return {"params": tensor_bytes(local), "optimizer": tensor_bytes(state + masters)}
    state = [v for s in optimizer.state.values() for v in s.values()]
    return {"params": tensor_bytes(params), "optimizer": tensor_bytes(state)}


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (VmRSS) or its peak since the last reset (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def rank_main(mode: str, layers: int, width: int, steps: int, output: Path) -> None:
    """One process of a 2-process run: build the model, take ``steps`` SFT steps, report."""
    import random

    from accelerate import Accelerator
    from transformers import GPT2Config, GPT2LMHeadModel

    from prefrl.lm import distributed, tiny_task, zero
    from prefrl.lm.sft import SFTConfig, SFTTrainer

    zero.name_cpu_accelerator()
    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    tokenizer = tiny_task.build_tokenizer()
    base_rss = rss_mb()
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=width,
        n_layer=layers,
        n_head=max(1, width // 64),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    num_params = sum(p.numel() for p in model.parameters())
    demos = tiny_task.sft_records(random.Random(0), 16 * (steps + 1))
    trainer = SFTTrainer(model, tokenizer, demos, SFTConfig(batch_size=16, num_epochs=1.0), accelerator, mode)
    setup_rss = rss_mb()
    reset_peak_rss()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_iteration()
        times.append(time.perf_counter() - start)
    row = {
        "mode": mode,
        "rank": accelerator.process_index,
        "num_params": num_params,
        **held(trainer),
        "setup_rss_mb": setup_rss - base_rss,
        "peak_rss_mb": rss_mb("VmHWM") - base_rss,
        "step_s": statistics.median(times[1:]),
    }
    with output.open("a") as f:
        f.write(json.dumps(row) + "\n")
    distributed.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rank-of", default=None, help=argparse.SUPPRESS)  # internal: run one rank
    parser.add_argument("--output", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be >= 2 (the first step, with its one-off allocations, is not timed)")
    if args.rank_of is not None:
        rank_main(args.rank_of, args.layers, args.width, args.steps, args.output)
        return
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "rows.jsonl"
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        for mode in args.modes:
            common = ["--layers", str(args.layers), "--width", str(args.width), "--steps", str(args.steps)]
            cmd = [*launcher, __file__, "--rank-of", mode, "--output", str(output), *common]
            # a fixed mmap threshold: glibc otherwise raises it as large tensors are freed and keeps
            # their memory, so the resident size would show what was once allocated, not what is held
            env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_="131072")
            result = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                sys.exit(f"{mode} failed:\n{result.stderr[-3000:]}")
            print(f"{mode} done", flush=True)
        rows = [json.loads(line) for line in output.read_text().splitlines()]
    report(rows, args)


HEADER = (
    "| mode | params MB | optimizer MB | both vs ddp | RSS set up MB | peak RSS in steps MB | vs ddp "
    "| step s | vs ddp |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def report(rows: list[dict], args) -> None:
    mb = 1024 * 1024
    for r in rows:
        r["held"] = r["params"] + r["optimizer"]
    by_mode = {m: [r for r in rows if r["mode"] == m] for m in args.modes}

    def mean(rs: list[dict], key: str) -> float:
        return statistics.mean(r[key] for r in rs)

    def ratio(value: float, key: str) -> str:
        base = by_mode.get("ddp")
        return f"{value / mean(base, key):.2f}x" if base else "-"

    size = f"{rows[0]['num_params'] / 1e6:.1f}M parameters"
    print(f"\nGPT-2 {args.layers} x {args.width}, {size}, fp32, AdamW, 2 processes (means over the ranks)")
    print(HEADER)
    for mode, rs in by_mode.items():
        p, o, held = (mean(rs, k) / mb for k in ("params", "optimizer", "held"))
        setup, peak, step = (mean(rs, k) for k in ("setup_rss_mb", "peak_rss_mb", "step_s"))
        cells = [mode, f"{p:.0f}", f"{o:.0f}", ratio(held * mb, "held"), f"{setup:.0f}", f"{peak:.0f}"]
        cells += [ratio(peak, "peak_rss_mb"), f"{step:.2f}", ratio(step, "step_s")]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
