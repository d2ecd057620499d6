"""``prefrl lm pipeline``: the offline default end to end, with progress bars and a report.

RUN_DIR/config.json, report.md, samples.json (before/after PPO), pairs.jsonl (plain
(prompt, response_1, response_2) records, for the labelling app), preferences.jsonl (the synthetic
labeller's answers), and one run directory per stage: sft/, rm/, ppo/ (each with metrics.jsonl and
model/); `prefrl plot RUN_DIR` draws the PPO run's gold and proxy scores against sqrt(KL).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from prefrl.lm import pipeline, tiny_task
from prefrl.lm.commands import MODEL_DIR, CheckpointedRun, run_training, save_model
from prefrl.lm.pipeline import PipelineConfig
from prefrl.lm.reward_model import RMTrainer, ScalarRewardModel, evaluate_rm
from prefrl.lm.sft import SFTTrainer
from prefrl.runs import create_run_dir, default_run_dir, open_run_logger


def _stage(run_dir: Path, name: str, config: Any) -> tuple[Path, Any]:
    path = create_run_dir(run_dir / name, f"lm-{name}", config)
    return path, open_run_logger(path)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def run_pipeline(config: PipelineConfig, run_dir: Path | None, console: Console) -> int:
    start = time.perf_counter()
    run_dir = create_run_dir(
        run_dir or default_run_dir("lm-pipeline", "tiny", config.seed), "lm-pipeline", config
    )
    console.print(f"run directory: {run_dir}")
    tokenizer, model = pipeline.build(config)
    demos = tiny_task.sft_records(random.Random(config.seed), config.num_demonstrations)
    sft = SFTTrainer(model, tokenizer, demos, config.sft)
    path, logger = _stage(run_dir, "sft", config.sft)
    if (
        run_training(
            CheckpointedRun(sft, path, logger, 10**9, {}),
            sft.num_steps,
            console,
            "sft",
            ("lm/sft_loss", "loss"),
            "steps",
        )
        is None
    ):
        return 130
    save_model(model, tokenizer, path / MODEL_DIR)
    before = pipeline.evaluate_policy(model, tokenizer, config)
    pairs = pipeline.collect_pairs(model, tokenizer, config)
    train, held_out = pipeline.label(pairs, config)
    _write_jsonl(run_dir / "pairs.jsonl", pairs)
    _write_jsonl(run_dir / "preferences.jsonl", train + held_out)
    rm = ScalarRewardModel.from_causal_lm(model)
    rm_trainer = RMTrainer(rm, tokenizer, train, config.rm)
    path, logger = _stage(run_dir, "rm", config.rm)
    if (
        run_training(
            CheckpointedRun(rm_trainer, path, logger, 10**9, {}),
            rm_trainer.num_steps,
            console,
            "reward model",
            ("lm/rm_accuracy", "acc"),
            "steps",
        )
        is None
    ):
        return 130
    accuracy = evaluate_rm(rm, tokenizer, held_out)
    pipeline.shift_reward_model(rm, tokenizer, train)
    save_model(rm, tokenizer, path / MODEL_DIR)
    ppo = pipeline.make_ppo_trainer(model, tokenizer, rm, config)
    path, logger = _stage(run_dir, "ppo", config.ppo)
    total = config.ppo.num_iterations * config.ppo.batch_size
    last = run_training(
        CheckpointedRun(ppo, path, logger, 10**9, {}),
        total,
        console,
        "ppo",
        ("lm/gold_score", "gold"),
        "responses",
    )
    if last is None:
        return 130
    save_model(model, tokenizer, path / MODEL_DIR)
    after = pipeline.evaluate_policy(model, tokenizer, config)
    summary = {
        "gold_before": before["gold_score"],
        "gold_after": after["gold_score"],
        "rm_held_out_accuracy": accuracy,
        "num_labels": len(train) + len(held_out),
        "final_kl": last.get("lm/kl", float("nan")),
        "seconds": time.perf_counter() - start,
    }
    (run_dir / "samples.json").write_text(
        json.dumps({"summary": summary, "before": before, "after": after}, indent=2)
    )
    report = render_report(summary, before, after)
    (run_dir / "report.md").write_text(report)
    console.print(report, soft_wrap=True, markup=False)
    return 0


def render_report(summary: dict[str, float], before: dict[str, Any], after: dict[str, Any]) -> str:
    lines = [
        "# prefrl lm pipeline (offline default)",
        "",
        f"Gold score of the policy's samples: **{summary['gold_before']:.2f} after SFT -> "
        f"{summary['gold_after']:.2f} after PPO** (256 samples each).",
        f"Reward model: {summary['num_labels']:.0f} synthetic labels, held-out accuracy "
        f"{summary['rm_held_out_accuracy']:.3f}. Final KL(pi || pi_ref) {summary['final_kl']:.2f} nats. "
        f"{summary['seconds']:.0f} s in all.",
        "",
    ]
    for title, result in (("Before PPO (SFT)", before), ("After PPO", after)):
        lines += [f"## {title}", "", "| prompt | response | gold |", "|---|---|---|"]
        lines += [f"| {s['prompt']} | {s['response']} | {s['gold']:.2f} |" for s in result["samples"]]
        lines.append("")
    return "\n".join(lines)
