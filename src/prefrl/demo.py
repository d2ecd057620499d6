"""``prefrl demo``: PPO on CartPole-v1 (its tuned preset), then a report in the run directory."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from rich.console import Console

from prefrl.logger import read_metrics
from prefrl.ppo.config import PPOConfig
from prefrl.ppo.presets import preset_config
from prefrl.runs import METRICS_FILE, default_run_dir

DEMO_ENV = "CartPole-v1"
SOLVED_RETURN = 475.0
"""CartPole-v1 counts as solved at a mean return of 475 over recent episodes."""


def run_demo(run_dir: Path | None, seed: int, console: Console) -> int:
    from prefrl.commands import start_ppo, train_run
    from prefrl.plotting import plot_run
    from prefrl.video import record_video

    torch.set_num_threads(1)
    config = preset_config(DEMO_ENV, seed=seed)
    run_dir = run_dir or default_run_dir("demo", DEMO_ENV, seed)
    trainer, run_dir = start_ppo(config, run_dir, None)
    console.print(f"[bold]prefrl demo[/bold]: PPO on {DEMO_ENV}, run directory {run_dir}")
    start = time.perf_counter()
    metrics = train_run(trainer, run_dir, console)
    if metrics is None:
        return 130
    seconds = time.perf_counter() - start
    plot = plot_run(run_dir)
    video, _, _ = record_video(run_dir, max_frames=500)
    report = write_report(run_dir, config, metrics, seconds, plot, video)
    console.print(report.read_text(), markup=False)
    console.print(f"report: {report}")
    return 0


def first_step_reaching(rows: list[dict], key: str, threshold: float) -> int | None:
    """Env steps at which ``key`` first reached ``threshold`` (None if never)."""
    for row in rows:
        value = row.get(key)
        if value is not None and value >= threshold:
            return int(row["step"])
    return None


def write_report(
    run_dir: Path,
    config: PPOConfig,
    metrics: dict[str, float],
    seconds: float,
    plot: Path,
    video: Path,
) -> Path:
    rows = read_metrics(run_dir / METRICS_FILE)
    solved_at = first_step_reaching(rows, "env/return_window", SOLVED_RETURN)
    solved = f"{solved_at} env steps" if solved_at is not None else "not within this run"
    nan = float("nan")
    window, eval_mean, eval_std = (
        metrics.get(k, nan) for k in ("env/return_window", "eval/return_mean", "eval/return_std")
    )
    lines = [
        f"# prefrl demo: PPO on {config.env_id}",
        "",
        "| | |",
        "|---|---|",
        f"| env steps | {config.num_iterations * config.batch_size} |",
        f"| wall-clock time | {seconds:.1f} s |",
        f"| mean return, last 20 training episodes | {window:.1f} |",
        f"| deterministic evaluation, {config.num_eval_episodes} episodes "
        f"| {eval_mean:.1f} +- {eval_std:.1f} |",
        f"| first reached a 20-episode mean of {SOLVED_RETURN:.0f} | {solved} |",
        "",
        f"![learning curves]({plot.relative_to(run_dir)})",
        "",
        f"Video of the trained agent: [{video.relative_to(run_dir)}]({video.relative_to(run_dir)})",
        "",
        f"Same run from the command line: `prefrl ppo --env-id {config.env_id} --seed {config.seed}`.",
        "",
    ]
    report = run_dir / "report.md"
    report.write_text("\n".join(lines))
    return report
