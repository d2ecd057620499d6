"""Learning-curve plots of a run directory (matplotlib, imported lazily, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from prefrl.cli.logger import read_metrics
from prefrl.cli.run_dir import METRICS_FILE, read_run

STEP = "step"
LABELS = "preferences/num_labels"
SQRT_KL = "lm/sqrt_kl"
X_LABELS = {STEP: "env steps", LABELS: "labels used", SQRT_KL: "sqrt(KL(pi || pi_ref))"}
LM_STEPS = {"lm-ppo": "responses", "lm-pipeline": "responses"}
"""What an LM run's step counts (optimizer steps otherwise)."""
Panel = tuple[str, list[str], str]
"""(title, metric keys, x-axis key)"""

PANELS: dict[str, list[Panel]] = {
    "ppo": [
        ("episode return", ["env/episode_return", "env/return_window", "eval/return_mean"], STEP),
        ("policy loss", ["ppo/policy_loss"], STEP),
        ("value loss", ["ppo/value_loss"], STEP),
        ("entropy", ["ppo/entropy"], STEP),
        ("approx KL / clip fraction", ["ppo/approx_kl", "ppo/clip_frac"], STEP),
        ("env steps / s", ["time/steps_per_second"], STEP),
    ],
    "rlhp": [
        ("true episode return (never seen by the agent)", ["env/return_window", "eval/return_mean"], STEP),
        ("true return against labels used", ["env/return_window"], LABELS),
        ("labels used", [LABELS], STEP),
        (
            "reward model accuracy vs labeller",
            ["reward_model/train_accuracy", "reward_model/val_accuracy"],
            STEP,
        ),
        ("predicted vs true segment return: correlation", ["reward_model/segment_return_correlation"], STEP),
        ("policy entropy", ["ppo/entropy"], STEP),
    ],
    "lm-ppo": [
        ("gold and proxy vs sqrt(KL) (Gao et al. 2022)", ["lm/gold_score", "lm/score"], SQRT_KL),
        ("gold and proxy score", ["lm/gold_score", "lm/score"], STEP),
        ("KL(pi || pi_ref) per response, nats", ["lm/kl"], STEP),
        ("response length / EOS rate", ["lm/response_length", "lm/eos_rate"], STEP),
        ("policy and value loss", ["lm/policy_loss", "lm/value_loss"], STEP),
        ("approx KL / clip fraction / entropy", ["lm/approx_kl", "lm/clip_frac", "lm/entropy"], STEP),
    ],
    "lm-dpo": [
        ("DPO loss", ["lm/dpo_loss"], STEP),
        ("implied-reward accuracy on the batch", ["lm/dpo_accuracy"], STEP),
        ("implied reward of chosen and rejected", ["lm/chosen_reward", "lm/rejected_reward"], STEP),
    ],
    "lm-sft": [("SFT loss", ["lm/sft_loss"], STEP)],
    "lm-rm": [("reward model loss / accuracy", ["lm/rm_loss", "lm/rm_accuracy"], STEP)],
}


def _series(rows: list[dict[str, Any]], key: str, x_key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        value, x = row.get(key), row.get(x_key)
        if value is not None and x is not None and math.isfinite(value):
            xs.append(x)
            ys.append(value)
    return xs, ys


def _draw_gao_fit(ax: Any, rows: list[dict[str, Any]]) -> None:
    """The gold score's fit d (alpha - beta log d) over the sqrt(KL) points
    (:mod:`prefrl.reward_model.overoptimisation`)."""
    from prefrl.reward_model.overoptimisation import fit_gao

    rows = [r for r in rows if r.get(SQRT_KL) is not None and r.get("lm/gold_score") is not None]
    fit = fit_gao([r[SQRT_KL] for r in rows], [r["lm/gold_score"] for r in rows])
    if fit is None:
        return
    top = max(r[SQRT_KL] for r in rows)
    ds = [top * (i + 1) / 100 for i in range(100)]
    label = f"gold fit d(a - b log d): a={fit.alpha:.2f}, b={fit.beta:.2f}"
    ax.plot(ds, [fit(d) for d in ds], "--", color="tab:blue", alpha=0.7, lw=1.2, label=label)


def plot_run(run_dir: Path, output: Path | None = None) -> Path:
    """Draw the run's learning curves to ``output`` (default RUN_DIR/plots/learning_curves.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    name = run_dir.name
    kind, config = read_run(run_dir)
    if kind == "lm-pipeline":  # the pipeline's PPO stage is a run directory of its own
        run_dir = run_dir / "ppo"
        kind, config = read_run(run_dir)
    config = config.get("ppo") or config.get("config") or config  # rlhp; an LM command; a config
    metrics_file = run_dir / METRICS_FILE
    rows = read_metrics(metrics_file) if metrics_file.exists() else []
    if not rows:
        raise ValueError(f"{metrics_file} has no metrics yet: plot after the first iteration")
    output = output or run_dir / "plots" / "learning_curves.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    panels = PANELS.get(kind, PANELS["ppo"])
    num_rows = math.ceil(len(panels) / 3)
    fig, axes = plt.subplots(
        num_rows, 3, figsize=(13, 3.5 * num_rows + 0.5), constrained_layout=True, squeeze=False
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, keys, x_key) in zip(axes.flat, panels, strict=False):
        for key in keys:
            xs, ys = _series(rows, key, x_key)
            if xs:
                style = "o" if key.startswith("eval/") else "." if x_key == SQRT_KL else "-"
                ax.plot(xs, ys, style, label=key, lw=1.2, ms=5)
        if x_key == SQRT_KL:
            _draw_gao_fit(ax, rows)
        ax.set_title(title)
        ax.set_xlabel(
            LM_STEPS.get(kind, "steps") if kind.startswith("lm") and x_key == STEP else X_LABELS[x_key]
        )
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(f"{config.get('env_id', kind)} (seed {config.get('seed', '?')}): {name}")
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
