"""``prefrl demo``: learning a task from preferences alone, next to PPO on the true reward.

Pendulum-v1 (swing up and balance): the preference agent never sees the env's reward, only a reward
model fitted to a synthetic labeller's answers about 1.5 s clips. A PPO agent trained on the true
reward with the same hyperparameters is the yardstick. The report goes into the run directory.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from prefrl.cli.logger import read_metrics
from prefrl.cli.run_dir import METRICS_FILE, default_run_dir
from prefrl.ppo.evaluate import normalised_return, random_policy_returns
from prefrl.ppo.presets import preset_config
from prefrl.rlhp import RLHPConfig

DEMO_ENV = "Pendulum-v1"
DEMO_STEPS = 204_800
DEMO_LABELS = 700
DEMO_EVAL_EPISODES = 50
"""Deterministic evaluation episodes per agent (and random-policy episodes for the zero)."""
LATE_FRACTION = 0.1
"""The "final" training return: the mean episode return over the last tenth of the iterations."""


def run_demo(run_dir: Path | None, seed: int, console: Console) -> int:
    from prefrl.cli.gym import run_rlhp, start_ppo, train_run
    from prefrl.cli.video import record_video

    torch.set_num_threads(1)
    run_dir = Path(run_dir or default_run_dir("demo", DEMO_ENV, seed))
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(f"{run_dir} already exists and is not empty: pass another --run-dir")
    ppo_config = preset_config(
        DEMO_ENV, seed=seed, total_timesteps=DEMO_STEPS, num_eval_episodes=DEMO_EVAL_EPISODES
    )
    console.print(f"[bold]prefrl demo[/bold] in {run_dir}")
    console.print(f"1/2 learning {DEMO_ENV} from {DEMO_LABELS} preferences, never seeing its reward")
    start = time.perf_counter()
    config = RLHPConfig(ppo=ppo_config, num_labels=DEMO_LABELS)
    if run_rlhp(config, run_dir / "rlhp", None, 1, console) != 0:
        return 130
    rlhp_seconds = time.perf_counter() - start
    console.print(f"2/2 the yardstick: PPO on {DEMO_ENV}'s true reward, same hyperparameters")
    start = time.perf_counter()
    trainer, _, logger = start_ppo(ppo_config, run_dir / "ppo", None)
    if train_run(trainer, run_dir / "ppo", logger, console) is None:
        return 130
    ppo_seconds = time.perf_counter() - start
    video, _, _ = record_video(run_dir / "rlhp", run_dir / "rlhp_agent.mp4", max_frames=400)
    random = float(np.mean(random_policy_returns(DEMO_ENV, DEMO_EVAL_EPISODES, seed + 200_000)))
    report = write_report(run_dir, rlhp_seconds, ppo_seconds, video, random)
    console.print(report.read_text(), markup=False, soft_wrap=True)
    console.print(f"report: {report}")
    return 0


def _last(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(values[-1]) if values else float("nan")


def late_returns(rows: list[dict], fraction: float = LATE_FRACTION) -> tuple[float, float]:
    """(final, best): the mean episode return over the last ``fraction`` of the iterations, and the
    best such window in the second half of the run (a late collapse shows as final << best)."""
    returns = [r["env/episode_return"] for r in rows if r.get("env/episode_return") is not None]
    if not returns:
        return float("nan"), float("nan")
    width = min(len(returns), max(3, round(fraction * len(returns))))
    windows = [float(np.mean(returns[i - width : i])) for i in range(width, len(returns) + 1)]
    second_half = windows[max(0, len(returns) // 2 - width) :]
    return windows[-1], max(second_half)


def plot_comparison(run_dir: Path, rlhp: list[dict], ppo: list[dict]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    for rows, name in ((rlhp, f"preferences only ({DEMO_LABELS} labels)"), (ppo, "PPO on the true reward")):
        xs = [r["step"] for r in rows if r.get("env/return_window") is not None]
        left.plot(
            xs, [r["env/return_window"] for r in rows if r.get("env/return_window") is not None], label=name
        )
    left.set(title=f"{DEMO_ENV}: true return (mean of last 20 episodes)", xlabel="env steps")
    left.legend()
    left.grid(alpha=0.3)
    xs = [r["step"] for r in rlhp if r.get("reward_model/segment_return_correlation") is not None]
    corr = [
        r["reward_model/segment_return_correlation"]
        for r in rlhp
        if r.get("reward_model/segment_return_correlation") is not None
    ]
    right.plot(xs, corr, color="C2")
    right.set(title="learned vs true return of new segments: correlation", xlabel="env steps", ylim=(0, 1.02))
    right.grid(alpha=0.3)
    path = run_dir / "comparison.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report_rows(
    rlhp: list[dict], ppo: list[dict], rlhp_seconds: float, ppo_seconds: float, random_return: float
) -> list[tuple[str, str, str]]:
    """(what, preference agent, PPO) rows of the demo's table, raw and normalised."""
    (final, best), (ppo_final, _) = late_returns(rlhp), late_returns(ppo)
    evaluation, ppo_evaluation = _last(rlhp, "eval/return_mean"), _last(ppo, "eval/return_mean")

    def norm(value: float, yardstick: float) -> str:
        return f"{normalised_return(value, random_return, yardstick):.2f}"

    late = f"last {LATE_FRACTION:.0%} of the iterations"
    rows = [
        ("a random policy (the zero of a normalised return)", f"{random_return:.0f}", f"{random_return:.0f}"),
        (f"true return while training, {late}", f"{final:.0f}", f"{ppo_final:.0f}"),
        ("  normalised (PPO on the true reward = 1)", norm(final, ppo_final), "1"),
        (f"deterministic evaluation, {DEMO_EVAL_EPISODES} episodes", f"{evaluation:.0f}",
         f"{ppo_evaluation:.0f}"),
        ("  normalised", norm(evaluation, ppo_evaluation), "1"),
        ("best window of the second half (normalised)", norm(best, ppo_final), "-"),
        ("labels used", f"{_last(rlhp, 'preferences/num_labels'):.0f}", "-"),
        ("reward model accuracy on held-out labels", f"{_last(rlhp, 'reward_model/val_accuracy'):.2f}", "-"),
        ("env steps", str(DEMO_STEPS), str(DEMO_STEPS)),
        ("wall-clock time", f"{rlhp_seconds:.0f} s", f"{ppo_seconds:.0f} s"),
    ]  # fmt: skip
    return rows


def write_report(
    run_dir: Path, rlhp_seconds: float, ppo_seconds: float, video: Path, random_return: float
) -> Path:
    rlhp = read_metrics(run_dir / "rlhp" / METRICS_FILE)
    ppo = read_metrics(run_dir / "ppo" / METRICS_FILE)
    plot = plot_comparison(run_dir, rlhp, ppo)
    rows = report_rows(rlhp, ppo, rlhp_seconds, ppo_seconds, random_return)
    lines = [
        f"# prefrl demo: {DEMO_ENV} learned from preferences alone",
        "",
        "The preference agent never saw the env's reward: a synthetic labeller compared pairs of 1.5 s",
        "clips by their true return, a 3-member reward-model ensemble was fitted to its answers",
        "(Bradley-Terry with the 10% noise model), and PPO maximised the learned reward. The yardstick",
        "is the same PPO (same hyperparameters, steps and seed) trained on the true reward; a",
        "normalised return is (R - R_random) / (R_PPO - R_random).",
        "",
        "| | preferences only | PPO on the true reward |",
        "|---|---:|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"![comparison]({plot.name})",
        "",
        f"Details: `rlhp/plots/learning_curves.png`, `ppo/plots/learning_curves.png`; the preference "
        f"agent at work: [{video.name}]({video.name}); every query and answer: `rlhp/preferences.sqlite`.",
        "",
        f"Same runs from the command line: `prefrl rlhp --env-id {DEMO_ENV} --num-labels {DEMO_LABELS} "
        f"--total-timesteps {DEMO_STEPS}` and "
        f"`prefrl ppo --env-id {DEMO_ENV} --total-timesteps {DEMO_STEPS}`.",
        "",
    ]
    report = run_dir / "report.md"
    report.write_text("\n".join(lines))
    return report
