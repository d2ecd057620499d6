"""prefrl's preference loop against HumanCompatibleAI `imitation`'s ``PreferenceComparisons``, side by
side on MuJoCo Hopper: same task variant (the 2017 paper's: no early termination, no control cost),
same label budget, same agent env steps, same seed, same segment length, the same synthetic teacher
(deterministic, on the true return), PPO at prefrl's Hopper preset on both sides. Reported: the true
return (mean of the last 20 training episodes, and a 10-episode deterministic evaluation) and the
wall-clock time of each whole run (process start to exit, evaluation included), one run after the
other in this one invocation so that the times are comparable, and the CPU seconds of each (process
and children: its cost whatever else the shared machine runs at the time).

- prefrl: ``prefrl rlhp --env-id Hopper-v5 --no-early-termination --no-control-cost --segment-length S
  --num-labels L --total-timesteps N --seed SEED`` (its defaults otherwise: ensemble of 3,
  disagreement queries, 25% of the labels on the initial policy then a decaying rate).
- imitation: ``benchmarks/imitation_side.py`` in imitation's own venv (it pins gymnasium 0.29, which
  has Hopper-v4, not v5: run with ``terminate_when_unhealthy=False, ctrl_cost_weight=0``); its recipe
  and the settings matched to prefrl's are in that file's docstring.

imitation's venv, outside the repo (``constraints.txt`` keeps pip from fetching another torch):

    python3 -m venv ../imitation-venv
    PIP_CONSTRAINT=constraints.txt ../imitation-venv/bin/pip install -r benchmarks/imitation-requirements.txt

Then, from the repo root in prefrl's venv (one process at a time: the two runs share the machine):

    python benchmarks/imitation_vs_prefrl.py --imitation-python ../imitation-venv/bin/python \
        --steps 147456 --labels 700 --seeds 1 [--prefrl-pythonpath path/to/frozen/src]
    python benchmarks/imitation_vs_prefrl.py --steps 24576 --labels 100   # a smoke test
    python benchmarks/imitation_vs_prefrl.py --table-only

``--steps`` should be a multiple of (imitation's rounds = ``--num-iterations`` + 1) x 2048 so both
agents take exactly that many PPO steps (default 147,456 = 6 x 12 x 2048). Rows are appended to
``OUT/imitation_vs_prefrl.jsonl`` as runs finish; the table is printed from every row there. Cost on
the project's 2-core VM: at 73,728 steps and 100 labels imitation used ~770 CPU s (prefrl 67); its
reward training, 3 epochs over every comparison each round with one forward per fragment, grows with
the label budget, so 700 labels / 147,456 steps is hours of imitation on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from prefrl.logger import read_metrics


def timed(argv: list[str], log: Path, env: dict | None = None) -> tuple[float, float]:
    """Run ``argv`` to its end, output to ``log``: (wall-clock seconds, CPU seconds of the process and
    its children). CPU time is what the run costs whatever else the machine is doing at the time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w") as f:
        subprocess.run(argv, check=True, stdout=f, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return round(seconds, 1), round(cpu, 1)


def run_prefrl(args: argparse.Namespace, seed: int, run_root: Path) -> dict:
    run_dir = run_root / f"prefrl-{args.env_id}-s{seed}-{args.labels}-{args.steps}"
    prefix = shlex.split(args.prefrl) if args.prefrl else [str(Path(sys.executable).parent / "prefrl")]
    argv = [*prefix, "rlhp", "--env-id", args.env_id, "--no-early-termination", "--no-control-cost"]
    argv += ["--seed", str(seed), "--total-timesteps", str(args.steps), "--num-labels", str(args.labels)]
    argv += ["--segment-length", str(args.segment_length), "--run-dir", str(run_dir)]
    env = dict(os.environ)
    if args.prefrl_pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.prefrl_pythonpath, env.get("PYTHONPATH")]))
    seconds, cpu = timed(argv, run_root / f"{run_dir.name}.log", env)
    last = read_metrics(run_dir / "metrics.jsonl")[-1]
    return {
        "library": "prefrl", "env_id": args.env_id, "seed": seed, "steps": int(last["step"]),
        "labels": int(last.get("preferences/num_labels", 0)), "final": last.get("env/return_window"),
        "eval": last.get("eval/return_mean"), "eval_std": last.get("eval/return_std"),
        "seconds": seconds, "cpu_seconds": cpu, "command": shlex.join(argv), "run_dir": str(run_dir),
    }  # fmt: skip


def run_imitation(args: argparse.Namespace, seed: int, run_root: Path) -> dict:
    name = f"imitation-{args.imitation_env_id}-s{seed}-{args.labels}-{args.steps}"
    result = run_root / f"{name}.json"
    argv = [args.imitation_python, str(Path(__file__).with_name("imitation_side.py"))]
    argv += ["--env-id", args.imitation_env_id, "--seed", str(seed), "--total-timesteps", str(args.steps)]
    argv += ["--num-labels", str(args.labels), "--fragment-length", str(args.segment_length)]
    argv += ["--num-iterations", str(args.num_iterations), "--log-dir", str(run_root / name)]
    argv += ["--result", str(result), *shlex.split(args.imitation_extra)]
    seconds, cpu = timed(argv, run_root / f"{name}.log")
    row = json.loads(result.read_text())
    row.update({"library": "imitation", "seconds": seconds, "cpu_seconds": cpu, "command": shlex.join(argv)})
    return row


def cpu_text(row: dict) -> str:
    return f"{row['cpu_seconds']:.0f}" if row.get("cpu_seconds") is not None else "-"


def table(rows: list[dict]) -> str:
    """Markdown: one line per run, then per seed the prefrl / imitation ratios."""
    lines = [
        "| library | env | seed | steps | labels used / budget | final return | eval return | wall-clock s "
        "| CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        eval_text = f"{r['eval']:.0f}" + (f" +- {r['eval_std']:.0f}" if r.get("eval_std") is not None else "")
        lines.append(
            f"| {r['library']} | {r['env_id']} | {r['seed']} | {r['steps']:,} | "
            f"{r['labels']} / {r.get('label_budget', r['labels'])} | "
            f"{r['final']:.0f} | {eval_text} | {r['seconds']:.0f} | {cpu_text(r)} |"
        )
    latest: dict[tuple, dict] = {}
    for r in rows:
        latest[(r["library"], r["seed"], r["steps"], r.get("label_budget", r["labels"]))] = r
    ratios = []
    for (library, seed, steps, labels), p in latest.items():
        i = latest.get(("imitation", seed, steps, labels))
        if library == "prefrl" and i is not None:
            ratios.append(
                f"| seed {seed}, {steps:,} steps, {labels} labels | {p['final'] / i['final']:.2f}x | "
                f"{p['eval'] / i['eval']:.2f}x | {p['seconds'] / i['seconds']:.2f}x | "
                + (
                    f"{p['cpu_seconds'] / i['cpu_seconds']:.2f}x |"
                    if p.get("cpu_seconds") and i.get("cpu_seconds")
                    else "- |"
                )
            )
    if ratios:
        lines += ["", "| prefrl / imitation | final return | eval return | wall-clock time | CPU time |"]
        lines += ["|---|---:|---:|---:|---:|", *ratios, *median_rows(latest)]
    return "\n".join(lines)


def median_rows(latest: dict[tuple, dict]) -> list[str]:
    """Per (steps, labels) run on several seeds by both: the ratio of the two libraries' medians."""
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for (library, seed, steps, labels), r in latest.items():
        if ("imitation" if library == "prefrl" else "prefrl", seed, steps, labels) in latest:
            groups.setdefault((steps, labels), {}).setdefault(library, []).append(r)
    rows = []
    for (steps, labels), runs in groups.items():
        if len(runs["prefrl"]) > 1:

            def ratio(key: str, runs: dict[str, list[dict]] = runs) -> str:
                p, i = (statistics.median(r[key] for r in runs[lib]) for lib in ("prefrl", "imitation"))
                return f"{p / i:.2f}x"

            rows.append(
                f"| median of {len(runs['prefrl'])} seeds, {steps:,} steps, {labels} labels | "
                f"{ratio('final')} | {ratio('eval')} | {ratio('seconds')} | {ratio('cpu_seconds')} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-id", default="Hopper-v5", help="prefrl's env (gymnasium 1.x)")
    parser.add_argument("--imitation-env-id", default="Hopper-v4", help="imitation's env (gymnasium 0.29)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--steps", type=int, default=147_456, help="agent env steps, both sides")
    parser.add_argument("--labels", type=int, default=700)
    parser.add_argument("--segment-length", type=int, default=188, help="steps per segment / fragment")
    parser.add_argument(
        "--num-iterations", type=int, default=5, help="imitation's PreferenceComparisons rounds"
    )
    parser.add_argument(
        "--prefrl", default="", help="prefrl command prefix (default: prefrl beside this python)"
    )
    parser.add_argument("--prefrl-pythonpath", default="", help="PYTHONPATH for prefrl (a frozen src)")
    parser.add_argument(
        "--imitation-python",
        default=os.environ.get("IMITATION_PYTHON", "../imitation-venv/bin/python"),
        help="python of imitation's venv (default: $IMITATION_PYTHON, else ../imitation-venv/bin/python)",
    )
    parser.add_argument("--imitation-extra", default="", help="more imitation_side.py flags, quoted")
    parser.add_argument("--only", choices=["prefrl", "imitation"], default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()

    results = args.out / "imitation_vs_prefrl.jsonl"
    run_root = args.out / "imitation_vs_prefrl"
    run_root.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for seed in args.seeds:
            for library, runner in (("prefrl", run_prefrl), ("imitation", run_imitation)):
                if args.only in (None, library):
                    row = {**runner(args, seed, run_root), "label_budget": args.labels}
                    with results.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    rows = (
        [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        if results.exists()
        else []
    )
    print(table(rows))


if __name__ == "__main__":
    main()
