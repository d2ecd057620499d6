"""Sampling speed on CPU for the tiny default model: prefrl's KV-cached loop vs transformers'
``model.generate`` (same prompts, batch, length cap, temperature). Prints tokens/s of each.

    .venv/bin/python benchmarks/lm_generation_speed.py
"""

from __future__ import annotations

import random
import time

import torch

from prefrl.lm import tiny_task
from prefrl.lm.data import encode, left_pad
from prefrl.lm.generation import sample
from prefrl.lm.sft import SFTConfig, SFTTrainer


def main() -> None:
    torch.set_num_threads(1)
    tokenizer = tiny_task.build_tokenizer()
    model = tiny_task.build_tiny_model(tokenizer, seed=0)
    trainer = SFTTrainer(
        model, tokenizer, tiny_task.sft_records(random.Random(0), 1500), SFTConfig(num_epochs=2)
    )
    while not trainer.done:
        trainer.train_iteration()
    model.eval()
    prompts = tiny_task.sample_prompts(random.Random(1), 64)
    p_ids, p_mask = left_pad(encode(tokenizer, prompts), tokenizer.pad_token_id)
    results = {}
    for name in ("prefrl loop", "model.generate", "prefrl loop", "model.generate"):
        start, tokens = time.perf_counter(), 0
        for i in range(10):
            if name == "prefrl loop":
                gen = torch.Generator().manual_seed(i)
                _, mask = sample(
                    model, p_ids, p_mask, 24, tokenizer.eos_token_id, tokenizer.pad_token_id, 1.0, gen
                )
                tokens += int(mask.sum())
            else:
                with torch.no_grad():
                    out = model.generate(
                        input_ids=p_ids,
                        attention_mask=p_mask.long(),
                        max_new_tokens=24,
                        do_sample=True,
                        temperature=1.0,
                        top_k=0,
                        pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=tokenizer.eos_token_id,
                    )
                tokens += int((out[:, p_ids.shape[1] :] != tokenizer.pad_token_id).sum())
        results[name] = tokens / (time.perf_counter() - start)  # the second (warm) round is kept
    for name, rate in results.items():
        print(f"{name:>15}: {rate:8.0f} response tokens/s (batch 64, cap 24, 1 thread)")


if __name__ == "__main__":
    main()
