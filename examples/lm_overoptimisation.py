"""Reward hacking, measured (Gao et al. 2022): gold and proxy score against sqrt(KL(pi || pi_ref)).

One SFT model and one proxy reward model (learned from synthetic gold labels) are shared; PPO then runs
from the same SFT policy with each KL coefficient. With a small kl_coef and long training the proxy
keeps rising while the gold score peaks and falls. Writes docs/images/lm_overoptimisation.png and the
per-iteration metrics as JSONL next to it (in --output-dir).

    .venv/bin/python examples/lm_overoptimisation.py            # ~10-15 minutes on 2 CPU cores
    .venv/bin/python examples/lm_overoptimisation.py --from-jsonl docs/images/lm_overoptimisation.jsonl
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import random
from pathlib import Path

import torch

from prefrl.lm import pipeline, tiny_task
from prefrl.lm.pipeline import PipelineConfig
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rm_training import RMTrainer, evaluate_rm
from prefrl.lm.sft import SFTTrainer
from prefrl.reward_model.overoptimisation import fit_gao


def train_sft_and_rm(config: PipelineConfig) -> tuple[object, object, ScalarRewardModel, float]:
    tokenizer, model = pipeline.build(config)
    sft = SFTTrainer(
        model,
        tokenizer,
        tiny_task.sft_records(random.Random(config.seed), config.num_demonstrations),
        config.sft,
    )
    while not sft.done:
        sft.train_iteration()
    train, held_out = pipeline.label(pipeline.collect_pairs(model, tokenizer, config), config)
    rm = ScalarRewardModel.from_causal_lm(model)
    trainer = RMTrainer(rm, tokenizer, train, config.rm)
    while not trainer.done:
        trainer.train_iteration()
    accuracy = evaluate_rm(rm, tokenizer, held_out)
    pipeline.shift_reward_model(rm, tokenizer, train)
    return tokenizer, model, rm, accuracy


def run_ppo(config: PipelineConfig, tokenizer, sft_model, rm, kl_coef: float, iterations: int) -> list[dict]:
    policy = copy.deepcopy(sft_model)
    ppo = dataclasses.replace(config.ppo, kl_coef=kl_coef, num_iterations=iterations)
    trainer = pipeline.make_ppo_trainer(policy, tokenizer, rm, config, ppo)
    rows = []
    while not trainer.done:
        metrics = trainer.train_iteration()
        rows.append({"iteration": trainer.iteration, **metrics})
        print(
            f"kl_coef {kl_coef}: it {trainer.iteration} proxy {metrics['lm/score']:.2f} "
            f"gold {metrics['lm/gold_score']:.2f} kl {metrics['lm/kl']:.2f}",
            flush=True,
        )
    return rows


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average."""
    return [
        sum(values[max(0, i - window + 1) : i + 1]) / len(values[max(0, i - window + 1) : i + 1])
        for i in range(len(values))
    ]


def plot(runs: dict[float, list[dict]], output: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(runs), figsize=(6 * len(runs), 4.2), constrained_layout=True, squeeze=False
    )
    for ax, (kl_coef, rows) in zip(axes[0], runs.items(), strict=True):
        x = smooth([max(r["lm/kl"], 0.0) ** 0.5 for r in rows], 5)
        ax.plot(x, smooth([r["lm/score"] for r in rows], 5), label="proxy (learned RM)", color="tab:orange")
        ax.plot(
            x,
            smooth([r["lm/gold_score"] for r in rows], 5),
            label="gold (hidden preference)",
            color="tab:blue",
        )
        fit = fit_gao([max(r["lm/kl"], 0.0) ** 0.5 for r in rows], [r["lm/gold_score"] for r in rows])
        if fit is not None:
            ds = [max(x) * (i + 1) / 100 for i in range(100)]
            label = f"gold fit d(a - b log d): a={fit.alpha:.2f}, b={fit.beta:.2f}"
            ax.plot(ds, [fit(d) for d in ds], "--", color="tab:blue", alpha=0.6, label=label)
        ax.set_xlabel("sqrt(KL(pi || pi_ref)) [sqrt nats]")
        ax.set_ylabel("score (SFT samples: proxy 0)")
        ax.set_title(f"kl_coef = {kl_coef}, {len(rows)} PPO iterations")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)


def redraw(path: Path, output: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    title = rows[0].get("title", "tiny review task")
    runs: dict[float, list[dict]] = {}
    for row in rows:
        if "kl_coef" in row:
            runs.setdefault(row["kl_coef"], []).append(row)
    plot(runs, output, title)
    print(f"wrote {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kl-coefs", type=float, nargs="+", default=[0.001, 0.05])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--num-labels", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output-dir", type=Path, default=Path("docs/images"))
    parser.add_argument("--from-jsonl", type=Path, default=None, help="only redraw from a saved metrics file")
    args = parser.parse_args()
    if args.from_jsonl is not None:
        redraw(args.from_jsonl, args.output_dir / "lm_overoptimisation.png")
        return
    torch.set_num_threads(1)
    config = PipelineConfig(seed=args.seed, num_labels=args.num_labels)
    tokenizer, model, rm, accuracy = train_sft_and_rm(config)
    runs = {kl: run_ppo(config, tokenizer, model, rm, kl, args.iterations) for kl in args.kl_coefs}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    title = (
        f"tiny review task: proxy RM from {args.num_labels} pairs "
        f"(held-out accuracy {accuracy:.2f}), seed {args.seed}"
    )
    with (args.output_dir / "lm_overoptimisation.jsonl").open("w") as f:
        f.write(json.dumps({"title": title}) + "\n")
        for kl, rows in runs.items():
            f.writelines(json.dumps({"kl_coef": kl, **row}) + "\n" for row in rows)
    plot(runs, args.output_dir / "lm_overoptimisation.png", title)
    print(f"wrote {args.output_dir / 'lm_overoptimisation.png'}")


if __name__ == "__main__":
    main()
