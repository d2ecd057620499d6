"""``prefrl lm coding``: the coding agent's reward hack, end to end, with progress bars, a report and a
plot.

RUN_DIR/config.json, report.md, summary.json (figures and sample programs before and after), plots/
coding_hack.png, preferences.jsonl (the judge's answers, for the preferences arm), and one run
directory per stage: sft/, rm/ (preferences arm) and ppo-ARM/ for each arm (each with metrics.jsonl,
checkpoints/last.pt and model/). ``prefrl lm coding --resume RUN_DIR`` continues a
stopped experiment: finished stages are kept.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from prefrl.cli.lm_pipeline import open_experiment, sft_stage, train_named_stage
from prefrl.cli.lm_runs import MODEL_DIR
from prefrl.cli.logger import read_metrics
from prefrl.cli.run_dir import METRICS_FILE
from prefrl.lm import coding_hack
from prefrl.lm.coding_hack import CodingHackConfig, Measures
from prefrl.lm.loading import save_model
from prefrl.lm.pipeline import shift_reward_model
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rm_training import RMTrainer, evaluate_rm

ARM_TEXT = {
    "proxy": "PPO on the shown tests passing (the proxy)",
    "hidden-tests": "PPO on the shown and held-out tests",
    "kl-budget": "PPO on the proxy with a KL budget",
    "preferences": "PPO on a reward model learned from preferences between programs",
}


def run_coding(
    config: CodingHackConfig, run_dir: Path | None, console: Console, resume: Path | None = None
) -> int:
    """The experiment in a new run directory, or continued in ``resume``'s. Returns the exit code."""
    start = time.perf_counter()
    run_dir = open_experiment("lm-coding", config, config.seed, run_dir, resume, console)
    tokenizer, model = coding_hack.build(config)
    sft_config = replace(config.sft, seed=config.seed)
    if not sft_stage(run_dir, model, tokenizer, coding_hack.demonstrations(config), sft_config, console):
        return _stopped(run_dir, console)
    before, before_samples = coding_hack.evaluate(model, tokenizer, config)
    summary: dict[str, Any] = {"sft": before.means(), "arms": {}}
    samples: dict[str, Any] = {"sft": before_samples}
    rm = None
    if "preferences" in config.arms:
        rm = _reward_model(run_dir, model, tokenizer, config, console, summary)
        if rm is None:
            return _stopped(run_dir, console)
    for arm in config.arms:
        policy = copy.deepcopy(model)
        arm_rm = rm if arm == "preferences" else None
        trainer = coding_hack.make_trainer(policy, tokenizer, config, arm, before, arm_rm)
        total = config.ppo.num_iterations * config.ppo.batch_size
        progress = (total, arm, ("coding/held_out_pass", "gold"), "programs")
        stage = f"ppo-{arm}"
        if not train_named_stage(run_dir, stage, trainer.config, trainer, console, progress, every=10):
            return _stopped(run_dir, console)
        save_model(policy, tokenizer, run_dir / stage / MODEL_DIR)
        after, samples[arm] = coding_hack.evaluate(policy, tokenizer, config)
        summary["arms"][arm] = arm_summary(read_metrics(run_dir / stage / METRICS_FILE), before, after)
    summary["seconds"] = time.perf_counter() - start
    (run_dir / "summary.json").write_text(json.dumps({"summary": summary, "samples": samples}, indent=2))
    report = render_report(summary, samples, config)
    (run_dir / "report.md").write_text(report)
    console.print(report, soft_wrap=True, markup=False)
    console.print(f"report: {run_dir / 'report.md'}; plot: {plot_coding(run_dir)}", soft_wrap=True)
    return 0


def _reward_model(
    run_dir: Path,
    model: Any,
    tokenizer: Any,
    config: CodingHackConfig,
    console: Console,
    summary: dict[str, Any],
) -> ScalarRewardModel | None:
    """The preferences arm's reward model, trained in RUN_DIR/rm on the judge's answers about pairs of
    SFT programs (written to RUN_DIR/preferences.jsonl), shifted so that SFT programs score 0 on
    average; its held-out accuracy goes into ``summary``. None if stopped."""
    train, held_out = coding_hack.judged_pairs(model, tokenizer, config)
    lines = "".join(json.dumps(row) + "\n" for row in train + held_out)
    (run_dir / "preferences.jsonl").write_text(lines, encoding="utf-8")
    torch.manual_seed(config.seed + 1)  # the head's initialisation, whether SFT ran now or before a resume
    rm = ScalarRewardModel.from_causal_lm(model)
    trainer = RMTrainer(rm, tokenizer, train, replace(config.rm, seed=config.seed))
    progress = (trainer.num_steps, "reward model", ("lm/rm_accuracy", "acc"), "steps")
    if not train_named_stage(run_dir, "rm", trainer.config, trainer, console, progress):
        return None
    summary["rm"] = {
        "held_out_accuracy": evaluate_rm(rm, tokenizer, held_out),
        "num_labels": len(train + held_out),
    }
    shift_reward_model(rm, tokenizer, train)
    save_model(rm, tokenizer, run_dir / "rm" / MODEL_DIR)
    return rm


def _stopped(run_dir: Path, console: Console) -> int:
    console.print(f"stopped; continue with [bold]prefrl lm coding --resume {run_dir}[/bold]")
    return 130


def arm_summary(rows: list[dict[str, float]], before: Measures, after: Measures) -> dict[str, Any]:
    """An arm's end figures (on the evaluation prompts) and when its alarms fired (iterations)."""
    gold_before = float(before.gold.mean())
    return {
        "after": after.means(),
        "final_kl": rows[-1].get("lm/kl", float("nan")) if rows else float("nan"),
        "detector_iteration": coding_hack.first_iteration(rows, "coding/detector"),
        "monitor_iteration": coding_hack.first_iteration(rows, "monitor/hacking"),
        "gold_halfway_iteration": coding_hack.gold_halfway(rows, gold_before),
    }


def _when(iteration: int | None) -> str:
    return "never" if iteration is None else f"iteration {iteration}"


def render_report(summary: dict[str, Any], samples: dict[str, Any], config: CodingHackConfig) -> str:
    sft = summary["sft"]
    lines = [
        "# prefrl lm coding: the agent that special-cases the tests",
        "",
        f"SFT policy ({config.num_demonstrations} demonstrations, {config.task.special_share:.0%} "
        f"special-cased): shown tests passed {sft['shown_pass']:.2f}, held-out (gold) "
        f"{sft['held_out_pass']:.2f}, special-cased programs {sft['special_cased']:.0%} "
        f"({config.num_eval} samples).",
        "",
        "| arm | shown tests (proxy) | held-out (gold) | special-cased | final KL | detector fired | "
        "monitor fired | gold half-way down |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for arm, result in summary["arms"].items():
        a = result["after"]
        lines.append(
            f"| {ARM_TEXT[arm]} | {a['shown_pass']:.2f} | {a['held_out_pass']:.2f} "
            f"| {a['special_cased']:.0%} "
            f"| {result['final_kl']:.2f} | {_when(result['detector_iteration'])} | "
            f"{_when(result['monitor_iteration'])} | {_when(result['gold_halfway_iteration'])} |"
        )
    if "rm" in summary:
        rm = summary["rm"]
        lines += [
            "",
            f"Reward model of the preferences arm: {rm['num_labels']} judged pairs of SFT programs, held-out "
            f"accuracy {rm['held_out_accuracy']:.3f}.",
        ]
    lines += ["", f"{summary['seconds']:.0f} s in all.", ""]
    for name, shown in samples.items():
        title = "SFT policy" if name == "sft" else ARM_TEXT[name]
        lines += [
            f"## Sample programs: {title}",
            "",
            "| prompt | program | shown | held-out |",
            "|---|---|---:|---:|",
        ]
        lines += [
            f"| {s['prompt']} | {s['program']} | {s['shown_pass']:.2f} | {s['held_out_pass']:.2f} |"
            for s in shown
        ]
        lines.append("")
    return "\n".join(lines)


CURVES = (
    ("shown tests passed (proxy)", "coding/shown_pass"),
    ("held-out tests passed (gold)", "coding/held_out_pass"),
    ("special-cased programs", "coding/special_cased"),
    ("monitor: proxy - gold improvement", "monitor/return_gap"),
)


def plot_coding(run_dir: Path, output: Path | None = None) -> Path:
    """Proxy, gold, special-cased share and the monitor's gap of every arm against iterations (top)
    and against sqrt(KL) to the SFT policy (bottom), with the SFT policy's level dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    runs = {
        d.name.removeprefix("ppo-"): read_metrics(d / METRICS_FILE)
        for d in sorted(run_dir.glob("ppo-*"))
        if (d / METRICS_FILE).exists()
    }
    sft = json.loads((run_dir / "summary.json").read_text())["summary"]["sft"]
    output = output or run_dir / "plots" / "coding_hack.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, len(CURVES), figsize=(4.2 * len(CURVES), 7), constrained_layout=True)
    for col, (title, key) in enumerate(CURVES):
        for arm, rows in runs.items():
            ys = [row.get(key, float("nan")) for row in rows]
            kl = [max(row.get("lm/kl", 0.0), 0.0) ** 0.5 for row in rows]
            axes[0, col].plot(range(1, len(rows) + 1), ys, label=arm)
            axes[1, col].plot(kl, ys, ".", label=arm)
        level = sft.get(key.removeprefix("coding/"))
        for row in (0, 1):
            if level is not None:
                axes[row, col].axhline(level, color="grey", ls="--", lw=1, label="SFT")
            axes[row, col].grid(alpha=0.3)
        axes[0, col].set_title(title)
        axes[0, col].set_xlabel("PPO iteration")
        axes[1, col].set_xlabel("sqrt(KL(pi || pi_SFT))")
    axes[0, 0].legend()
    fig.suptitle(f"{run_dir.name}: the coding agent's reward hack")
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
