"""What a per-segment reward buys on the tiny task: PPO from the same SFT model paid the gold score
once per answer (sequence level) or sentence by sentence (segment level: each sentence paid what it
adds to the gold score, the same total), same seeds and settings; the gold score of 256 samples
after each iteration budget. Writes benchmarks/results/lm_segment_rewards.json and prints a table.

    .venv/bin/python benchmarks/lm_segment_rewards.py --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from prefrl.lm import pipeline, tiny_task  # noqa: E402
from prefrl.lm.pipeline import PipelineConfig, gold_fn, segment_gold_fn  # noqa: E402
from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer  # noqa: E402
from prefrl.lm.sft import SFTConfig, SFTTrainer  # noqa: E402


def run(seed: int, iterations: int, checkpoints: list[int]) -> dict[str, list[float]]:
    config = PipelineConfig(seed=seed, num_demonstrations=1500, sft=SFTConfig(num_epochs=2))
    torch.manual_seed(seed)
    tokenizer, model = pipeline.build(config)
    sft = SFTTrainer(model, tokenizer, tiny_task.sft_records(random.Random(seed), 1500), config.sft)
    while not sft.done:
        sft.train_iteration()
    prompts = tiny_task.sample_prompts(random.Random(seed + 5), 512)
    results = {}
    for level, reward_fn in (("sequence", gold_fn), ("segment", segment_gold_fn)):
        policy = copy.deepcopy(model)
        ppo = LMPPOConfig(
            num_iterations=iterations, batch_size=32, minibatch_size=8, seed=seed, reward_level=level
        )
        trainer = LMPPOTrainer(policy, tokenizer, prompts, ppo, reward_fn=reward_fn, gold_fn=gold_fn)
        golds = [pipeline.evaluate_policy(policy, tokenizer, config)["gold_score"]]
        while not trainer.done:
            trainer.train_iteration()
            if trainer.iteration in checkpoints:
                golds.append(pipeline.evaluate_policy(policy, tokenizer, config)["gold_score"])
        results[level] = golds
        print(f"seed {seed} {level}: " + ", ".join(f"{g:.2f}" for g in golds), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "lm_segment_rewards.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    checkpoints = [5, 10, args.iterations]
    runs = {str(seed): run(seed, args.iterations, checkpoints) for seed in args.seeds}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"checkpoints": [0, *checkpoints], "runs": runs}, indent=1))
    print("| iterations | " + " | ".join(str(c) for c in [0, *checkpoints]) + " |")
    print("|---|" + "---|" * (len(checkpoints) + 1))
    for level in ("sequence", "segment"):
        cells = []
        for i in range(len(checkpoints) + 1):
            values = [r[level][i] for r in runs.values()]
            cells.append(f"{statistics.median(values):.2f} / {min(values):.2f}")
        print(f"| {level} level (median / worst seed) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
