"""LoRA against full fine-tuning on a ~40M-parameter GPT-2 (SFT on the tiny task, CPU, 1 torch
thread): the trainable parameters, the bytes of gradients and optimizer state after a few steps
(counted tensor by tensor), the process's peak resident memory above what it had before the model was
built, and tokens/s (median step). Each mode runs in a fresh process.

    .venv/bin/python benchmarks/lm_lora.py                  # full and LoRA ranks 8 and 64
    .venv/bin/python benchmarks/lm_lora.py --layers 4 --steps 5
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def child(args: argparse.Namespace) -> dict:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from prefrl.lm import tiny_task
    from prefrl.lm.lora import LoRAConfig, apply_lora
    from prefrl.lm.sft import SFTConfig, SFTTrainer

    torch.set_num_threads(1)
    tokenizer = tiny_task.build_tokenizer()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=args.width, n_layer=args.layers, n_head=8,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = apply_lora(GPT2LMHeadModel(config), LoRAConfig(rank=args.rank))
    records = tiny_task.sft_records(random.Random(0), args.batch * (args.steps + 2))
    trainer = SFTTrainer(
        model, tokenizer, records, SFTConfig(batch_size=args.batch, num_epochs=1, learning_rate=1e-4)
    )
    times, tokens = [], []
    for _ in range(args.steps):
        indices = trainer._order[: args.batch]
        start = time.perf_counter()
        trainer.train_iteration()
        times.append(time.perf_counter() - start)
        tokens.append(sum(len(trainer.prompts[i]) + len(trainer.responses[i]) for i in indices) or 1)
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    state = [v for s in trainer.optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    grads = [p.grad for p in trainable if p.grad is not None]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step = statistics.median(times[1:])
    return {
        "rank": args.rank,
        "parameters": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in trainable),
        "optimizer_mb": sum(t.numel() * t.element_size() for t in state) / 2**20,
        "grad_mb": sum(t.numel() * t.element_size() for t in grads) / 2**20,
        "peak_rss_mb": (peak - before) / 1024,
        "step_s": step,
        "tokens_per_s": statistics.median(tokens[1:]) / step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[0, 8, 64], help="0: full fine-tuning")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rank", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank is not None:
        print(json.dumps(child(args)))
        return
    rows = []
    for rank in args.ranks:
        argv = [sys.executable, __file__, "--rank", str(rank), "--layers", str(args.layers)]
        argv += ["--width", str(args.width), "--batch", str(args.batch), "--steps", str(args.steps)]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
    full = rows[0]
    print("| mode | parameters | trainable | grads + Adam state MB | peak RSS MB | tokens/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        name = "full fine-tuning" if r["rank"] == 0 else f"LoRA rank {r['rank']}"
        held = r["optimizer_mb"] + r["grad_mb"]
        print(
            f"| {name} | {r['parameters'] / 1e6:.1f}M | {r['trainable'] / 1e6:.2f}M | {held:.1f} "
            f"({held / (full['optimizer_mb'] + full['grad_mb']):.3f}x) | {r['peak_rss_mb']:.0f} "
            f"({r['peak_rss_mb'] / full['peak_rss_mb']:.2f}x) | {r['tokens_per_s']:.0f} "
            f"({r['tokens_per_s'] / full['tokens_per_s']:.2f}x) |"
        )


if __name__ == "__main__":
    main()
