"""PPO-RLHF throughput, prefrl vs the PPO trainer of an older TRL (TRL removed it later): the same tiny
GPT-2 policy (SFT'd on the tiny review task, saved once), the same reward model and critic start
(one sequence-classification checkpoint, loaded by both), the same prompts and PPO shape (batch 64,
minibatch 16, 4 PPO epochs, responses capped at 24 tokens, temperature 1, KL coefficient 0.05),
torch 1 thread. Prints end-to-end responses/s and response tokens/s of each (sampling, scoring and
the update), timed from the end of the first iteration to the end of the last; each library counts
the tokens of its own samples, up to and including EOS.

TRL lives in its own virtual environment (it needs transformers < 4.54):

    python3 -m venv /tmp/trl-old
    PIP_CONSTRAINT=$PWD/constraints.txt /tmp/trl-old/bin/pip install "trl==0.19.1" "transformers<4.54" \\
        datasets accelerate
    .venv/bin/python benchmarks/lm_ppo_vs_trl.py --trl-python /tmp/trl-old/bin/python

The TRL side runs this same file with ``--impl trl`` (it reads only the saved models and prompts).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

BATCH, MINIBATCH, EPOCHS, CAP, KL_COEF, LR = 64, 16, 4, 24, 0.05, 3e-4


def make_data(work: Path, iterations: int) -> None:
    """The SFT'd policy (work/policy), the reward model / critic start (work/rm: the policy's trunk
    with a seeded scalar head, as a sequence-classification checkpoint) and the prompts."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from prefrl.lm import tiny_task
    from prefrl.lm.sft import SFTConfig, SFTTrainer

    torch.set_num_threads(1)
    tokenizer = tiny_task.build_tokenizer(work / "policy")
    model = tiny_task.build_tiny_model(tokenizer, seed=0)
    records = tiny_task.sft_records(random.Random(0), 1500)
    trainer = SFTTrainer(model, tokenizer, records, SFTConfig(num_epochs=2))
    while not trainer.done:
        trainer.train_iteration()
    model.save_pretrained(str(work / "policy"))
    tokenizer.save_pretrained(str(work / "rm"))
    torch.manual_seed(0)
    rm = AutoModelForSequenceClassification.from_pretrained(str(work / "policy"), num_labels=1)
    rm.config.pad_token_id = tokenizer.pad_token_id
    rm.save_pretrained(str(work / "rm"))
    prompts = tiny_task.sample_prompts(random.Random(1), iterations * BATCH)
    (work / "prompts.json").write_text(json.dumps(prompts))


def run_prefrl(work: Path, iterations: int, seed: int) -> dict[str, float]:
    import torch
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer
    from prefrl.lm.reward_model import ScalarRewardModel

    tokenizer = AutoTokenizer.from_pretrained(str(work / "policy"))
    policy = AutoModelForCausalLM.from_pretrained(str(work / "policy"))
    rm = ScalarRewardModel(AutoModel.from_pretrained(str(work / "rm")))
    score = AutoModelForSequenceClassification.from_pretrained(str(work / "rm")).score
    with torch.no_grad():  # the same head as TRL's (no bias)
        rm.head.weight.copy_(score.weight)
        rm.head.bias.zero_()
    config = LMPPOConfig(
        num_iterations=iterations,
        batch_size=BATCH,
        minibatch_size=MINIBATCH,
        update_epochs=EPOCHS,
        max_new_tokens=CAP,
        kl_coef=KL_COEF,
        learning_rate=LR,
        seed=seed,
    )
    prompts = json.loads((work / "prompts.json").read_text())
    trainer = LMPPOTrainer(policy, tokenizer, prompts, config, reward_model=rm)
    marks, tokens = [], 0.0
    for _ in range(iterations):
        metrics = trainer.train_iteration()
        tokens += metrics["lm/response_length"] * BATCH
        marks.append((time.perf_counter(), tokens))
    return _rates(marks)


class _Tokens:
    """Counts TRL's sampled response tokens (up to and including EOS) from its generate calls."""

    total = 0.0


def run_trl(work: Path, iterations: int, seed: int) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        PreTrainedTokenizerFast,
        TrainerCallback,
    )
    from trl import PPOConfig, PPOTrainer
    from trl.trainer import utils as trl_utils

    # transformers 5 names the tokenizer class "TokenizersBackend", unknown to 4.x: load the same file
    special = json.loads((work / "policy" / "tokenizer_config.json").read_text())
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(work / "policy" / "tokenizer.json"),
        eos_token=special["eos_token"],
        pad_token=special["pad_token"],
        unk_token=special["unk_token"],
        padding_side="left",
    )
    policy = AutoModelForCausalLM.from_pretrained(str(work / "policy"))
    ref = AutoModelForCausalLM.from_pretrained(str(work / "policy"))
    rm = AutoModelForSequenceClassification.from_pretrained(str(work / "rm"), num_labels=1)
    value = AutoModelForSequenceClassification.from_pretrained(str(work / "rm"), num_labels=1)
    prompts = json.loads((work / "prompts.json").read_text())
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    args = PPOConfig(
        output_dir=str(work / "trl_out"),
        # TRL's rollout batch is per_device_train_batch_size x gradient_accumulation_steps, cut into
        # num_mini_batches optimizer steps (with accumulation 1: one step per minibatch of 16)
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=1,
        num_mini_batches=BATCH // MINIBATCH,
        update_epochs=EPOCHS,
        local_rollout_forward_batch_size=BATCH,
        response_length=CAP,
        total_episodes=iterations * BATCH,
        temperature=1.0,
        kl_coef=KL_COEF,
        learning_rate=LR,
        lr_scheduler_type="constant",
        stop_token="eos",
        missing_eos_penalty=1.0,
        num_sample_generations=0,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=10**6,
        seed=seed,
    )
    trainer = PPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=policy,
        ref_model=ref,
        reward_model=rm,
        value_model=value,
        train_dataset=Dataset.from_dict({"input_ids": ids}),
    )
    truncate = trl_utils.truncate_response
    import trl.trainer.ppo_trainer as ppo_module

    def counting_truncate(stop_token_id: int, pad_token_id: int, responses: torch.Tensor) -> torch.Tensor:
        out = truncate(stop_token_id, pad_token_id, responses)
        _Tokens.total += float((out != pad_token_id).sum())
        return out

    ppo_module.truncate_response = counting_truncate
    marks: list[tuple[float, float]] = []

    class Marks(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            marks.append((time.perf_counter(), _Tokens.total))

    trainer.add_callback(Marks())
    trainer.train()
    if len(marks) != iterations:
        raise SystemExit(f"TRL ran {len(marks)} iterations, not {iterations}: its batch settings are off")
    return _rates(marks)


def _rates(marks: list[tuple[float, float]]) -> dict[str, float]:
    """From (time, tokens so far) after each iteration: rates over all iterations after the first
    (the first pays for warm-up, and TRL's for setting up its loop)."""
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    iterations = len(marks) - 1
    return {
        "seconds": t1 - t0,
        "responses_per_s": iterations * BATCH / (t1 - t0),
        "tokens_per_s": (n1 - n0) / (t1 - t0),
        "mean_length": (n1 - n0) / (iterations * BATCH),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=["both", "prefrl", "trl"], default="both")
    parser.add_argument("--trl-python", default="/tmp/trl-old/bin/python")
    parser.add_argument("--work", type=Path, default=Path("/tmp/prefrl-ppo-bench"))
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=2, help="runs of each, interleaved")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    if args.impl != "both":
        run = run_trl if args.impl == "trl" else run_prefrl
        print(json.dumps(run(args.work, args.iterations, args.seed)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    make_data(args.work, args.iterations)
    pythons = {"prefrl": sys.executable, "trl": args.trl_python}
    results: dict[str, list[dict[str, float]]] = {impl: [] for impl in pythons}
    for seed in range(args.seeds):
        for impl, python in pythons.items():
            cmd = [python, __file__, "--impl", impl, "--work", str(args.work), "--seed", str(seed)]
            out = subprocess.run([*cmd, "--iterations", str(args.iterations)], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{impl} failed:\n{out.stderr[-3000:]}")
            results[impl].append(json.loads(out.stdout.strip().splitlines()[-1]))
    mean = {impl: {k: sum(r[k] for r in rs) / len(rs) for k in rs[0]} for impl, rs in results.items()}
    for impl, r in mean.items():
        print(
            f"{impl:>7}: {r['responses_per_s']:6.1f} responses/s, {r['tokens_per_s']:7.0f} response tokens/s "
            f"(mean length {r['mean_length']:.1f}, {args.iterations} iterations, {r['seconds']:.1f} s)"
        )
    ratio = mean["prefrl"]["tokens_per_s"] / mean["trl"]["tokens_per_s"]
    print(f"prefrl / TRL response tokens/s: {ratio:.2f}x")


if __name__ == "__main__":
    main()
