"""Reward-model training, prefrl vs TRL's RewardTrainer: same tiny GPT-2 (saved once, loaded by both
with from_pretrained), same comparisons, batch size, learning rate and epochs; one run each.
Prints training pairs/s and held-out accuracy of both, and the ratio.

TRL lives in its own virtual environment (its pins may clash with prefrl's):

    python3 -m venv /tmp/trl-venv
    PIP_CONSTRAINT=$PWD/constraints.txt /tmp/trl-venv/bin/pip install torch==2.13.0 trl
    .venv/bin/python benchmarks/lm_reward_model_vs_trl.py --trl-python /tmp/trl-venv/bin/python

The TRL side runs this same file with ``--impl trl`` (it imports only ``prefrl.lm.tiny_task`` from src/).
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


PREFRL_VARIANTS: dict[str, dict[str, Any]] = {
    "prefrl": {},  # RMConfig's defaults: prompts forwarded once, answers in 4 least-padding chunks
    "prefrl-unshared": {"share_prompts": False},  # each answer forwarded with its prompt
    "prefrl-one-batch": {"length_chunks": 1, "share_prompts": False},  # one padded batch per step
    "prefrl-grouped": {"group_by_length": True},  # batches of similar-length comparisons
}


def make_data(work: Path, num_train: int, num_eval: int, seed: int, prompt_repeat: int = 1) -> None:
    """Comparisons of two demonstrations per prompt, labelled by the gold score (ties dropped), and a
    tiny GPT-2 with its tokenizer, saved for both sides."""
    from prefrl.lm import tiny_task

    rng = random.Random(seed)
    records: list[dict[str, str]] = []
    while len(records) < num_train + num_eval:
        prompt = " ".join([tiny_task.make_prompt(rng.choice(tiny_task.DISHES))] * prompt_repeat)
        a, b = tiny_task.sample_review(rng, prompt), tiny_task.sample_review(rng, prompt)
        ga, gb = tiny_task.gold_score(prompt, a), tiny_task.gold_score(prompt, b)
        if ga != gb:
            chosen, rejected = (a, b) if ga > gb else (b, a)
            records.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    for name, rows in (("train", records[:num_train]), ("eval", records[num_train:])):
        (work / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tokenizer = tiny_task.build_tokenizer(work / "model")
    tiny_task.build_tiny_model(tokenizer, seed).save_pretrained(str(work / "model"))


def read(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_prefrl(
    work: Path, batch_size: int, lr: float, epochs: float, seed: int, **options: Any
) -> dict[str, float]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from prefrl.lm.reward_model import ScalarRewardModel
    from prefrl.lm.rm_training import RMConfig, RMTrainer, evaluate_rm

    tokenizer = AutoTokenizer.from_pretrained(str(work / "model"))
    torch.manual_seed(seed)  # the score head's initialisation
    model = ScalarRewardModel(AutoModel.from_pretrained(str(work / "model")))
    train = read(work / "train.jsonl")
    config = RMConfig(learning_rate=lr, batch_size=batch_size, num_epochs=epochs, seed=seed, **options)
    trainer = RMTrainer(model, tokenizer, train, config)
    start = time.perf_counter()
    while not trainer.done:
        trainer.train_iteration()
    seconds = time.perf_counter() - start
    pairs = trainer.num_steps * batch_size
    return {
        "pairs_per_s": pairs / seconds,
        "seconds": seconds,
        "accuracy": evaluate_rm(model, tokenizer, read(work / "eval.jsonl")),
    }


def run_trl(work: Path, batch_size: int, lr: float, epochs: float, seed: int) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(str(work / "model"))
    torch.manual_seed(seed)  # the score head's initialisation
    model = AutoModelForSequenceClassification.from_pretrained(str(work / "model"), num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(
        output_dir=str(work / "trl_out"),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        learning_rate=lr,
        num_train_epochs=epochs,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=1.0,
        gradient_checkpointing=False,
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        report_to=[],
        logging_steps=10**6,
        dataloader_num_workers=0,
        max_length=64,
        disable_dropout=True,
        seed=seed,
    )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(read(work / "train.jsonl")),
        eval_dataset=Dataset.from_list(read(work / "eval.jsonl")),
        processing_class=tokenizer,
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    pairs = len(read(work / "train.jsonl")) * epochs
    accuracy = trainer.evaluate()["eval_accuracy"]
    return {"pairs_per_s": pairs / seconds, "seconds": seconds, "accuracy": float(accuracy)}


def run_one(python: str, impl: str, seed: int, args: argparse.Namespace) -> dict[str, float]:
    cmd = [python, __file__, "--impl", impl, "--seed", str(seed), "--work", str(args.work)]
    cmd += ["--batch-size", str(args.batch_size), "--learning-rate", str(args.learning_rate)]
    cmd += ["--epochs", str(args.epochs)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{impl} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=["both", *PREFRL_VARIANTS, "trl"], default="both")
    parser.add_argument("--trl-python", default="/tmp/trl-venv/bin/python")
    parser.add_argument("--work", type=Path, default=Path("/tmp/prefrl-rm-bench"))
    parser.add_argument("--num-train", type=int, default=4000)
    parser.add_argument("--num-eval", type=int, default=1000)
    parser.add_argument(
        "--prompt-repeat", type=int, default=1, help="each prompt repeated N times (longer shared prompts)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=3, help="runs of each, interleaved")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    if args.impl != "both":
        common = (args.work, args.batch_size, args.learning_rate, args.epochs, args.seed)
        trl = args.impl == "trl"
        result = run_trl(*common) if trl else run_prefrl(*common, **PREFRL_VARIANTS[args.impl])
        print(json.dumps(result))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    make_data(args.work, args.num_train, args.num_eval, seed=0, prompt_repeat=args.prompt_repeat)
    impls = {**{name: sys.executable for name in PREFRL_VARIANTS}, "trl": args.trl_python}
    results: dict[str, list[dict[str, float]]] = {impl: [] for impl in impls}
    for seed in range(args.seeds):
        for impl, python in impls.items():
            results[impl].append(run_one(python, impl, seed, args))
    mean = {impl: {k: sum(r[k] for r in rs) / len(rs) for k in rs[0]} for impl, rs in results.items()}
    for impl, r in mean.items():
        accuracies = ", ".join(f"{x['accuracy']:.3f}" for x in results[impl])
        print(
            f"{impl:>16}: {r['pairs_per_s']:6.1f} pairs/s, "
            f"held-out accuracy {r['accuracy']:.3f} ({accuracies})"
        )
    for impl in PREFRL_VARIANTS:
        print(f"{impl} / TRL pairs/s: {mean[impl]['pairs_per_s'] / mean['trl']['pairs_per_s']:.2f}x")


if __name__ == "__main__":
    main()
