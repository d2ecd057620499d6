"""Gold score against KL(pi || pi_ref) for PPO, RLOO, GRPO, REINFORCE++ and DPO on the offline tiny
task, from the same SFT model and the same synthetic preference data, per seed:

1. SFT a tiny GPT-2 on the tiny review task; sample pairs; a synthetic labeller answers by the hidden
   gold score; 20% held out.
2. A reward model on those answers; PPO, RLOO, GRPO and REINFORCE++ against it (same batch of
   responses per iteration, same KL coefficient, same clipped update), each from a copy of the SFT
   policy; DPO on the same answers, from another copy (no reward model).
3. Every ``--eval-every`` iterations (DPO: the same share of its steps), ``--eval-prompts`` fixed
   prompts are answered by the policy; the mean gold score of the answers and the mean KL(pi || ref)
   of them (summed over tokens, sampled estimate) are recorded.

Writes benchmarks/results/lm_frontier.json (every point), prints the table (best gold at KL <= 5
nats and at any KL, medians over seeds and the worst seed), and draws docs/images/lm_frontier.png.

    .venv/bin/python benchmarks/lm_frontier.py --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from prefrl.lm import pipeline, tiny_task, token_mdp  # noqa: E402
from prefrl.lm.data import (  # noqa: E402
    batch_from_tensors,
    encode,
    left_pad,
)
from prefrl.lm.dpo import DPOConfig, DPOTrainer  # noqa: E402
from prefrl.lm.generation import response_logprobs, sample  # noqa: E402
from prefrl.lm.pipeline import PipelineConfig  # noqa: E402
from prefrl.lm.ppo import LMPPOConfig  # noqa: E402
from prefrl.lm.reward_model import ScalarRewardModel  # noqa: E402
from prefrl.lm.rm_training import RMConfig, RMTrainer, evaluate_rm  # noqa: E402
from prefrl.lm.sft import SFTConfig, SFTTrainer  # noqa: E402

METHODS = ("ppo", "rloo", "grpo", "reinforce++", "dpo")
KL_BUDGET = 5.0


@torch.no_grad()
def gold_and_kl(
    policy: Any, reference: Any, tokenizer: Any, prompts: list[str], seed: int
) -> tuple[float, float]:
    """Mean gold score of the policy's answers to ``prompts`` and their mean summed KL to the reference."""
    policy.eval()
    p_ids, p_mask = left_pad(encode(tokenizer, prompts), tokenizer.pad_token_id)
    generator = torch.Generator().manual_seed(seed)
    responses, mask = sample(
        policy, p_ids, p_mask, 24, tokenizer.eos_token_id, tokenizer.pad_token_id, 1.0, generator
    )
    batch = batch_from_tensors(p_ids, p_mask, responses, mask)
    kl = token_mdp.per_token_kl(response_logprobs(policy, batch), response_logprobs(reference, batch), mask)
    keep = mask & (responses != tokenizer.eos_token_id)
    texts = tokenizer.batch_decode(
        torch.where(keep, responses, tokenizer.pad_token_id), skip_special_tokens=True
    )
    gold = pipeline.gold_fn(prompts, texts)
    return sum(gold) / len(gold), float(kl.sum(1).mean())


def prepare(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """SFT, labelled pairs, reward model (trained once per seed for every method)."""
    config = PipelineConfig(
        seed=seed, num_demonstrations=args.demonstrations, num_labels=args.labels,
        sft=SFTConfig(num_epochs=2), rm=RMConfig(num_epochs=2),
    )  # fmt: skip
    torch.manual_seed(seed)
    tokenizer, model = pipeline.build(config)
    sft = SFTTrainer(
        model, tokenizer, tiny_task.sft_records(random.Random(seed), config.num_demonstrations), config.sft
    )
    while not sft.done:
        sft.train_iteration()
    train, held_out = pipeline.label(pipeline.collect_pairs(model, tokenizer, config), config)
    torch.manual_seed(seed + 1)
    rm = ScalarRewardModel.from_causal_lm(model)
    rm_trainer = RMTrainer(rm, tokenizer, train, config.rm)
    while not rm_trainer.done:
        rm_trainer.train_iteration()
    accuracy = evaluate_rm(rm, tokenizer, held_out)
    pipeline.shift_reward_model(rm, tokenizer, train)
    prompts = tiny_task.sample_prompts(random.Random(seed + 100), args.eval_prompts)
    return {"config": config, "tokenizer": tokenizer, "sft": model, "rm": rm, "train": train,
            "rm_accuracy": accuracy, "prompts": prompts}  # fmt: skip


def run_rl(
    estimator: str, setup: dict[str, Any], args: argparse.Namespace, seed: int
) -> list[dict[str, float]]:
    policy = copy.deepcopy(setup["sft"])
    ppo_config = LMPPOConfig(
        estimator=estimator, num_iterations=args.iterations, batch_size=32, minibatch_size=8,
        kl_coef=args.kl_coef, seed=seed,
    )  # fmt: skip
    trainer = pipeline.make_ppo_trainer(
        policy, setup["tokenizer"], copy.deepcopy(setup["rm"]), setup["config"], ppo_config
    )
    points = [evaluate(0, policy, setup, seed)]
    start = time.perf_counter()
    while not trainer.done:
        trainer.train_iteration()
        if trainer.iteration % args.eval_every == 0:
            points.append(evaluate(trainer.iteration / args.iterations, policy, setup, seed, start))
    return points


def run_dpo(setup: dict[str, Any], args: argparse.Namespace, seed: int) -> list[dict[str, float]]:
    policy = copy.deepcopy(setup["sft"])
    trainer = DPOTrainer(
        policy,
        setup["tokenizer"],
        setup["train"],
        DPOConfig(beta=args.beta, num_epochs=args.dpo_epochs, seed=seed),
    )
    every = max(1, trainer.num_steps * args.eval_every // args.iterations)
    points = [evaluate(0, policy, setup, seed)]
    start = time.perf_counter()
    while not trainer.done:
        trainer.train_iteration()
        if trainer.step % every == 0 or trainer.done:
            points.append(evaluate(trainer.step / trainer.num_steps, policy, setup, seed, start))
    return points


def evaluate(
    progress: float, policy: Any, setup: dict[str, Any], seed: int, start: float | None = None
) -> dict[str, float]:
    seconds = 0.0 if start is None else time.perf_counter() - start
    gold, kl = gold_and_kl(policy, setup["sft"], setup["tokenizer"], setup["prompts"], seed + 7)
    return {"progress": progress, "gold": gold, "kl": kl, "seconds": seconds}


def summarise(results: dict[str, Any]) -> str:
    lines = [
        f"| method | best gold at KL <= {KL_BUDGET:g} (median / worst seed) | best gold at any KL "
        "| KL there | train s |",
        "|---|---|---|---|---|",
    ]
    for method in METHODS:
        runs = [r[method] for r in results["seeds"].values() if method in r]
        if not runs:
            continue
        within = [max((p["gold"] for p in run if p["kl"] <= KL_BUDGET), default=float("nan")) for run in runs]
        best = [max(run, key=lambda p: p["gold"]) for run in runs]
        lines.append(
            f"| {method} | {statistics.median(within):.2f} / {min(within):.2f} | "
            f"{statistics.median(b['gold'] for b in best):.2f} / {min(b['gold'] for b in best):.2f} | "
            f"{statistics.median(b['kl'] for b in best):.1f} | "
            f"{statistics.median(run[-1]['seconds'] for run in runs):.0f} |"
        )
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, method in enumerate(METHODS):
        for j, seeds in enumerate(results["seeds"].values()):
            run = seeds.get(method)
            if run:
                ax.plot([p["kl"] for p in run], [p["gold"] for p in run], "-o", ms=3, color=f"C{i}",
                        alpha=0.8, label=method if j == 0 else None)  # fmt: skip
    ax.axvline(KL_BUDGET, color="grey", ls=":", lw=1)
    ax.set_xlabel("KL(pi || pi_SFT), nats per answer (sampled)")
    ax.set_ylabel("gold score of the answers")
    ax.set_title("tiny review task: gold vs KL, same SFT model and labels, one line per seed")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--eval-prompts", type=int, default=128)
    parser.add_argument("--kl-coef", type=float, default=0.05)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--dpo-epochs", type=float, default=6.0)
    parser.add_argument("--demonstrations", type=int, default=4000)
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "lm_frontier.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "images" / "lm_frontier.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, Any] = json.loads(args.output.read_text()) if args.output.exists() else {"seeds": {}}
    results["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    for seed in args.seeds:
        setup = prepare(seed, args)
        runs = results["seeds"].setdefault(str(seed), {})
        runs["rm_accuracy"] = setup["rm_accuracy"]
        for method in args.methods:
            runs[method] = (
                run_dpo(setup, args, seed) if method == "dpo" else run_rl(method, setup, args, seed)
            )
            print(
                f"seed {seed} {method}: " + ", ".join(f"{p['kl']:.1f}:{p['gold']:.2f}" for p in runs[method]),
                flush=True,
            )
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(results, indent=1))
    print(summarise(results))
    plot(results, args.plot)
    print(f"wrote {args.output} and {args.plot}")


if __name__ == "__main__":
    main()
