"""``prefrl lm pipeline``: the offline default end to end, with progress bars and a report.

RUN_DIR/config.json, report.md, samples.json (before/after PPO), pairs.jsonl (plain
(prompt, response_1, response_2) records, for the labelling app), preferences.jsonl (the synthetic
labeller's answers), and one run directory per stage: sft/, rm/, ppo/ (each with metrics.jsonl and
model/ and checkpoints/last.pt); `prefrl plot RUN_DIR` draws the PPO run's gold and proxy scores
against sqrt(KL). `prefrl lm pipeline --resume RUN_DIR` continues a stopped pipeline.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from prefrl.cli.lm_runs import MODEL_DIR, LMTrainer, lm_checkpoints, open_run, run_training
from prefrl.cli.logger import read_metrics
from prefrl.cli.loop import Bar
from prefrl.cli.run_dir import CHECKPOINT_FILE, METRICS_FILE, create_run_dir, default_run_dir
from prefrl.lm import pipeline, tiny_task
from prefrl.lm.loading import save_model
from prefrl.lm.pipeline import PipelineConfig
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rm_training import RMTrainer, evaluate_rm
from prefrl.lm.sft import SFTTrainer

CHECKPOINT_EVERY = {"sft": 50, "rm": 50, "ppo": 10}
"""Steps (iterations for PPO) between a stage's checkpoints; a stop (Ctrl-C) also saves one."""


def train_named_stage(
    run_dir: Path,
    name: str,
    config: Any,
    trainer: LMTrainer,
    console: Console,
    progress: tuple[Any, ...],
    every: int | None = None,
) -> bool:
    """Train one stage in RUN_DIR/NAME, from its checkpoint if it has one (a finished stage is then not
    trained again); progress: (total, label, (metric, short name), unit); a checkpoint ``every``
    steps (iterations for PPO; default CHECKPOINT_EVERY[name]). False if stopped (saved)."""
    path = run_dir / name
    resume = path if (path / CHECKPOINT_FILE).exists() else None
    if resume is None and path.exists():  # stopped before its first checkpoint: nothing to keep
        shutil.rmtree(path)
    path, logger, state = open_run(f"lm-{name}", config, path, resume, path)
    if state is not None:
        trainer.load_state_dict(state["trainer"])
    total, label, metric, unit = progress
    checkpoints = lm_checkpoints(trainer, path, every or CHECKPOINT_EVERY[name], {}, main=True)
    bar = Bar(console, total, label, metric[0], metric[1], unit, digits=2)
    return run_training(trainer, path, logger, checkpoints, bar, main=True) is not None


def open_experiment(
    kind: str, config: Any, seed: int, run_dir: Path | None, resume: Path | None, console: Console
) -> Path:
    """A multi-stage experiment's run directory: ``resume``, or a new one (default
    runs/KIND-tiny-sSEED-DATE-TIME) with the config written; its path is printed."""
    if resume is None:
        run_dir = create_run_dir(run_dir or default_run_dir(kind, "tiny", seed), kind, config)
    path = resume or run_dir
    assert path is not None
    console.print(f"run directory: {path}")
    return path


def sft_stage(
    run_dir: Path, model: Any, tokenizer: Any, demos: list[dict[str, Any]], config: Any, console: Console
) -> bool:
    """SFT in RUN_DIR/sft (resumed from its checkpoint, kept if finished), the model saved to
    RUN_DIR/sft/model. False if stopped (saved)."""
    sft = SFTTrainer(model, tokenizer, demos, config)
    progress: tuple[Any, ...] = (sft.num_steps, "sft", ("lm/sft_loss", "loss"), "steps")
    if not train_named_stage(run_dir, "sft", config, sft, console, progress):
        return False
    save_model(model, tokenizer, run_dir / "sft" / MODEL_DIR)
    return True


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def run_pipeline(
    config: PipelineConfig, run_dir: Path | None, console: Console, resume: Path | None = None
) -> int:
    """The whole pipeline in a new run directory, or continued in ``resume``'s: finished stages are
    kept, a stopped one goes on from its checkpoint, and the steps between (sampling, labelling,
    evaluation) are recomputed (seeded: the same pairs and labels). Returns the exit code."""
    start = time.perf_counter()
    run_dir = open_experiment("lm-pipeline", config, config.seed, run_dir, resume, console)
    tokenizer, model = pipeline.build(config)
    demos = tiny_task.sft_records(random.Random(config.seed), config.num_demonstrations)
    if not sft_stage(run_dir, model, tokenizer, demos, config.sft, console):
        return _stopped(run_dir, console)
    before = pipeline.evaluate_policy(model, tokenizer, config)
    pairs = pipeline.collect_pairs(model, tokenizer, config)
    train, held_out = pipeline.label(pairs, config)
    _write_jsonl(run_dir / "pairs.jsonl", pairs)
    _write_jsonl(run_dir / "preferences.jsonl", train + held_out)
    torch.manual_seed(config.seed + 1)  # the head's initialisation, whether SFT ran now or before a resume
    rm = ScalarRewardModel.from_causal_lm(model)
    rm_trainer = RMTrainer(rm, tokenizer, train, config.rm)
    progress = (rm_trainer.num_steps, "reward model", ("lm/rm_accuracy", "acc"), "steps")
    if not train_named_stage(run_dir, "rm", config.rm, rm_trainer, console, progress):
        return _stopped(run_dir, console)
    accuracy = evaluate_rm(rm, tokenizer, held_out)
    pipeline.shift_reward_model(rm, tokenizer, train)
    save_model(rm, tokenizer, run_dir / "rm" / MODEL_DIR)
    ppo = pipeline.make_ppo_trainer(model, tokenizer, rm, config)
    total = config.ppo.num_iterations * config.ppo.batch_size
    progress = (total, "ppo", ("lm/gold_score", "gold"), "responses")
    if not train_named_stage(run_dir, "ppo", config.ppo, ppo, console, progress):
        return _stopped(run_dir, console)
    save_model(model, tokenizer, run_dir / "ppo" / MODEL_DIR)
    after = pipeline.evaluate_policy(model, tokenizer, config)
    summary = {
        "gold_before": before["gold_score"],
        "gold_after": after["gold_score"],
        "rm_held_out_accuracy": accuracy,
        "num_labels": len(train) + len(held_out),
        "final_kl": read_metrics(run_dir / "ppo" / METRICS_FILE)[-1].get("lm/kl", float("nan")),
        "seconds": time.perf_counter() - start,
    }
    _write_report(run_dir, summary, before, after, console)
    return 0


def _write_report(
    run_dir: Path, summary: dict[str, float], before: dict[str, Any], after: dict[str, Any], console: Console
) -> None:
    """samples.json and report.md, and the report on the console."""
    (run_dir / "samples.json").write_text(
        json.dumps({"summary": summary, "before": before, "after": after}, indent=2)
    )
    from prefrl.cli.plots import plot_run

    report = render_report(summary, before, after)
    (run_dir / "report.md").write_text(report)
    console.print(report, soft_wrap=True, markup=False)
    console.print(f"report: {run_dir / 'report.md'}; plot: {plot_run(run_dir)}", soft_wrap=True)


def _stopped(run_dir: Path, console: Console) -> int:
    console.print(f"stopped; continue with [bold]prefrl lm pipeline --resume {run_dir}[/bold]")
    return 130


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
