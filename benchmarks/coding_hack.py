"""The coding agent's reward hack on several seeds: `prefrl lm coding --seed S` for each seed (its
defaults: the whole experiment), then one table of what every arm reached and when the alarms fired,
and seed 1's figure copied to docs/images/coding_hack.png.

    python benchmarks/coding_hack.py [--seeds 1 2 3] [--parallel 2] [--out runs/coding] [--docs docs]

Finished seeds are not run again (their summary.json is read); a stopped one goes on with
`prefrl lm coding --resume RUN_DIR`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

PREFRL = str(Path(sys.executable).parent / "prefrl")
"""The prefrl command of this Python's environment."""


def run_seeds(seeds: list[int], parallel: int, out: Path) -> None:
    pending = [s for s in seeds if not (out / f"seed{s}" / "summary.json").exists()]
    running: list[subprocess.Popen[bytes]] = []
    for seed in pending:
        run_dir = out / f"seed{seed}"
        args = (
            ["--resume", str(run_dir)]
            if run_dir.exists()
            else ["--seed", str(seed), "--run-dir", str(run_dir)]
        )
        cmd = [PREFRL, "lm", "coding", *args]
        print("$ " + shlex.join(cmd), flush=True)
        log = (out / f"seed{seed}.log").open("wb")
        running.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
        while len(running) >= parallel:
            running = [p for p in running if p.poll() is None]
            time.sleep(1)
    for process in running:
        process.wait()


def _when(iteration: int | None) -> str:
    return "-" if iteration is None else str(iteration)


def table(seeds: list[int], out: Path) -> str:
    lines = [
        "| seed | arm | shown (proxy) | held-out (gold) | special-cased | detector | monitor "
        "| gold half-way | s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for seed in seeds:
        summary = json.loads((out / f"seed{seed}" / "summary.json").read_text())["summary"]
        sft = summary["sft"]
        lines.append(
            f"| {seed} | SFT | {sft['shown_pass']:.2f} | {sft['held_out_pass']:.2f} | "
            f"{sft['special_cased']:.0%} | | | | {summary['seconds']:.0f} |"
        )
        for arm, result in summary["arms"].items():
            a = result["after"]
            lines.append(
                f"| {seed} | {arm} | {a['shown_pass']:.2f} | {a['held_out_pass']:.2f} "
                f"| {a['special_cased']:.0%} | "
                f"{_when(result['detector_iteration'])} | {_when(result['monitor_iteration'])} | "
                f"{_when(result['gold_halfway_iteration'])} | |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--parallel", type=int, default=2, help="seeds run at once (one torch thread each)")
    parser.add_argument("--out", type=Path, default=Path("runs/coding"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    run_seeds(args.seeds, args.parallel, args.out)
    print(table(args.seeds, args.out))
    figure = args.out / f"seed{args.seeds[0]}" / "plots" / "coding_hack.png"
    if figure.exists():
        shutil.copy(figure, args.docs / "images" / "coding_hack.png")
        print(f"figure: {args.docs / 'images' / 'coding_hack.png'}")


if __name__ == "__main__":
    main()
