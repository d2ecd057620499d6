"""Reward hacking shown (issue 7): three experiments, each one `prefrl` CLI run, then the report's
figures and clips.

(a) PPO on the hand-written backflip proxy (height-change speed + joint rotation speed) for the
    Hopper backflip task: proxy return against the flip-progress score and the flips metric.
(b) `prefrl rlhp` on the same task with the flip judge answering ~900 queries.
(c) Offline vs online reward fitting on Hopper-v5 (the paper's variant): the reward model fitted once
    on the initial policy's labels (`--no-online`) against refitted as the agent improves, with the
    hacking monitor's predicted and true improvement and its warnings.

    python benchmarks/reward_hacking.py run a|b|c [--steps N] [--out runs/hacking]
    python benchmarks/reward_hacking.py report [--out runs/hacking] [--docs docs]

`run` prints each command before running it (copy it to continue a run: `--resume RUN_DIR`);
`report` draws docs/images/hacking_*.png, records short clips with `prefrl video` and prints the
figures of the table in docs/reward_hacking.md.
"""

from __future__ import annotations

import argparse
import math
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefrl.cli.logger import read_metrics

BACKFLIP = "prefrl/HopperBackflip-v0"
HOPPER_PAPER_VARIANT = ["rlhp", "--env-id", "Hopper-v5", "--no-early-termination", "--no-control-cost"]
COMMANDS: dict[str, list[list[str]]] = {
    "a": [["ppo", "--env-id", BACKFLIP, "--proxy-reward", "backflip"]],
    "b": [
        [
            "rlhp",
            "--env-id",
            BACKFLIP,
            "--labeller",
            "flip-judge",
            "--num-labels",
            "900",
            "--segment-length",
            "60",
        ]
    ],
    "c": [
        [*HOPPER_PAPER_VARIANT, "--num-labels", "200", "--segment-length", "50", online]
        for online in ("--no-online", "--online")
    ],
}
RUN_NAMES = {"a": ["a-backflip-proxy"], "b": ["b-flip-judge"], "c": ["c-offline", "c-online"]}
DEFAULT_STEPS = {"a": 303_104, "b": 253_952, "c": 61_440}


PREFRL = str(Path(sys.executable).parent / "prefrl")
"""The prefrl command of this Python's environment."""


def run(experiment: str, steps: int, out: Path) -> None:
    for args, name in zip(COMMANDS[experiment], RUN_NAMES[experiment], strict=True):
        cmd = [PREFRL, *args, "--total-timesteps", str(steps), "--run-dir", str(out / name)]
        print("$ nice -n 10 " + shlex.join(cmd), flush=True)
        subprocess.run(["nice", "-n", "10", *cmd], check=True)


def series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pairs = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def smooth(ys: list[float], k: int = 5) -> list[float]:
    return [sum(ys[max(0, i - k + 1) : i + 1]) / len(ys[max(0, i - k + 1) : i + 1]) for i in range(len(ys))]


def plot_panels(panels: list[tuple[str, dict[str, tuple[Path, str]]]], title: str, output: Path) -> None:
    """One panel per (title, {legend: (run dir, metric key)}), env steps on x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), constrained_layout=True)
    for ax, (panel_title, lines) in zip(axes, panels, strict=True):
        for legend, (run_dir, key) in lines.items():
            xs, ys = series(read_metrics(run_dir / "metrics.jsonl"), key)
            if xs:
                ax.plot(xs, smooth(ys), label=legend, lw=1.4)
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)


def last(run_dir: Path, key: str, k: int = 5) -> float:
    _, ys = series(read_metrics(run_dir / "metrics.jsonl"), key)
    return sum(ys[-k:]) / len(ys[-k:]) if ys else float("nan")


def first_step(run_dir: Path, key: str) -> float | None:
    xs, ys = series(read_metrics(run_dir / "metrics.jsonl"), key)
    return next((x for x, y in zip(xs, ys, strict=True) if y > 0), None)


def report(out: Path, docs: Path, videos: bool = True) -> None:
    a, b = out / RUN_NAMES["a"][0], out / RUN_NAMES["b"][0]
    off, on = (out / n for n in RUN_NAMES["c"])
    images = docs / "images"
    figures = {
        "hacking_a_proxy.png": (
            "(a) PPO on the backflip proxy",
            [
                ("proxy return (what the agent is paid)", {"proxy": (a, "env/proxy_return")}),
                ("flip-progress return (the task)", {"true": (a, "env/true_return")}),
                ("flips per episode", {"flips": (a, "env/flips")}),
            ],
        ),
        "hacking_b_flip_judge.png": (
            "(b) prefrl rlhp with the flip judge",
            [
                ("flip-progress return (never seen by the agent)", {"true": (b, "env/episode_return")}),
                ("flips per episode", {"flips": (b, "env/flips")}),
                ("labels used", {"labels": (b, "preferences/num_labels")}),
            ],
        ),
        "hacking_c_offline_online.png": (
            "(c) offline vs online reward fitting, Hopper-v5",
            [
                (
                    "true episode return",
                    {"offline": (off, "env/return_window"), "online": (on, "env/return_window")},
                ),
                (
                    "improvement over the initial policy (reference std)",
                    {
                        "offline predicted": (off, "monitor/predicted_improvement"),
                        "offline true": (off, "monitor/true_improvement"),
                        "online predicted": (on, "monitor/predicted_improvement"),
                        "online true": (on, "monitor/true_improvement"),
                    },
                ),
                (
                    "offline: segment return (reward model's is fixed-scale)",
                    {
                        "predicted": (off, "reward_model/predicted_segment_return"),
                        "true": (off, "env/true_segment_return"),
                    },
                ),
                (
                    "predicted vs true segment return: correlation",
                    {
                        "offline": (off, "reward_model/segment_return_correlation"),
                        "online": (on, "reward_model/segment_return_correlation"),
                    },
                ),
            ],
        ),
    }
    for name, (title, panels) in figures.items():
        if all((run_dir / "metrics.jsonl").exists() for _, lines in panels for run_dir, _ in lines.values()):
            plot_panels(panels, title, images / name)
            print(f"wrote {images / name}")
    for run_dir, clip in ((a, "hacking_a_proxy.mp4"), (b, "hacking_b_flip_judge.mp4")):
        if videos and (run_dir / "checkpoints").exists():
            cmd = [PREFRL, "video", str(run_dir), "--output", str(images / clip), "--max-frames", "250"]
            subprocess.run(cmd, check=True)
    for run_dir in (a, b, off, on):
        if (run_dir / "metrics.jsonl").exists():
            keys = ["env/proxy_return", "env/true_return", "env/episode_return", "env/flips"]
            keys += ["monitor/return_gap", "reward_model/segment_return_correlation"]
            figures_row = {k: round(last(run_dir, k), 2) for k in keys}
            steps = series(read_metrics(run_dir / "metrics.jsonl"), "iteration")[0][-1:]
            print(
                run_dir.name,
                "steps",
                steps,
                figures_row,
                "first hacking",
                first_step(run_dir, "monitor/hacking"),
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["run", "report"])
    parser.add_argument("experiment", nargs="?", choices=sorted(COMMANDS))
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/hacking"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--no-videos", action="store_true", help="report: figures only")
    args = parser.parse_args()
    if args.action == "run":
        if args.experiment is None:
            parser.error("run needs an experiment: a, b or c")
        run(args.experiment, args.steps or DEFAULT_STEPS[args.experiment], args.out)
    else:
        report(args.out, args.docs, videos=not args.no_videos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
