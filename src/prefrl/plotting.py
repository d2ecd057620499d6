"""Learning-curve plots of a run directory (matplotlib, imported lazily, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from prefrl.logger import read_metrics
from prefrl.runs import METRICS_FILE, read_run_config

PANELS: list[tuple[str, list[str]]] = [
    ("episode return", ["env/episode_return", "env/return_window", "eval/return_mean"]),
    ("policy loss", ["ppo/policy_loss"]),
    ("value loss", ["ppo/value_loss"]),
    ("entropy", ["ppo/entropy"]),
    ("approx KL / clip fraction", ["ppo/approx_kl", "ppo/clip_frac"]),
    ("env steps / s", ["time/steps_per_second"]),
]


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if value is not None and math.isfinite(value):
            xs.append(row["step"])
            ys.append(value)
    return xs, ys


def plot_run(run_dir: Path, output: Path | None = None) -> Path:
    """Draw the run's learning curves to ``output`` (default RUN_DIR/plots/learning_curves.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    metrics_file = run_dir / METRICS_FILE
    rows = read_metrics(metrics_file) if metrics_file.exists() else []
    if not rows:
        raise ValueError(f"{metrics_file} has no metrics yet: plot after the first iteration")
    output = output or run_dir / "plots" / "learning_curves.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    for ax, (title, keys) in zip(axes.flat, PANELS, strict=True):
        for key in keys:
            xs, ys = _series(rows, key)
            if xs:
                style = "o" if key.startswith("eval/") else "-"
                ax.plot(xs, ys, style, label=key, lw=1.2, ms=5)
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(f"{config.get('env_id', '')} (seed {config.get('seed', '?')}): {run_dir.name}")
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
