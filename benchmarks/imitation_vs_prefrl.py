"""prefrl's preference loop against HumanCompatibleAI `imitation`'s ``PreferenceComparisons``, side by
side, in one of two protocols (``--protocol``):

- ``hopper`` (the default): MuJoCo Hopper, same task variant (the 2017 paper's: no early termination,
  no control cost), same label budget, same agent env steps, same seed, same segment length, the same
  synthetic teacher (deterministic, on the true return), PPO at prefrl's Hopper preset on both sides;
- ``pendulum-tutorial``: imitation's own protocol, its preference-comparisons tutorial on Pendulum-v1
  (200 comparisons, then a fresh PPO learner on the learned reward), against prefrl on the same env,
  label budget, agent env steps and seed with everything else at prefrl's defaults (its Pendulum
  preset is that tutorial's PPO, without value clipping, with reward scaling).

Reported: the true return (the final training return, and a deterministic evaluation) and the
wall-clock time of each whole run (process start to exit, evaluation included), one run after the
other in this one invocation so that the times are comparable, and the CPU seconds of each (process
and children: its cost whatever else the shared machine runs at the time).

Protocol ``hopper``:

- prefrl: ``prefrl rlhp --env-id Hopper-v5 --no-early-termination --no-control-cost --segment-length S
  --num-labels L --total-timesteps N --seed SEED`` (its defaults otherwise: ensemble of 3,
  disagreement queries, 25% of the labels on the initial policy then a decaying rate); final return:
  ``env/return_window`` (last 20 episodes) of the last row of its metrics, evaluation: its default.
- imitation: ``benchmarks/imitation_side.py`` in imitation's own venv (it pins gymnasium 0.29, which
  has Hopper-v4, not v5: run with ``terminate_when_unhealthy=False, ctrl_cost_weight=0``); its recipe
  and the settings matched to prefrl's are in that file's docstring; 10 evaluation episodes.

Protocol ``pendulum-tutorial`` (defaults: 102,400 steps, 200 labels, 50 evaluation episodes):

- prefrl: ``prefrl rlhp --env-id Pendulum-v1 --num-labels 200 --total-timesteps 102400 --seed SEED
  --num-eval-episodes 50``, nothing else; final return: the mean of ``env/episode_return`` over the
  last tenth of its PPO iterations (5 of 50: ~40 episodes), evaluation: ``eval/return_mean`` of the
  last row.
- imitation: ``imitation_side.py --protocol pendulum-tutorial``: the tutorial's loop at its
  ``train(total_timesteps=5_000)`` (12,288 agent steps: SB3 runs whole rollouts) and its learner on
  the rest, 90,112 steps, so that both libraries' agents take 102,400 steps in all (why, and the other
  reading, in that file's docstring); final return: the learner's last 20 training episodes,
  evaluation: the learner, 50 episodes.

Returns are compared as ratios when both are positive, else (Pendulum's returns are negative) as the
difference prefrl - imitation (positive: prefrl better).

imitation's venv, outside the repo (``constraints.txt`` keeps pip from fetching another torch):

    python3 -m venv ../imitation-venv
    PIP_CONSTRAINT=constraints.txt ../imitation-venv/bin/pip install -r benchmarks/imitation-requirements.txt

Then, from the repo root in prefrl's venv (one process at a time: the two runs share the machine):

    python benchmarks/imitation_vs_prefrl.py --imitation-python ../imitation-venv/bin/python \
        --steps 147456 --labels 700 --seeds 1 [--prefrl-pythonpath path/to/frozen/src]
    python benchmarks/imitation_vs_prefrl.py --steps 24576 --labels 100   # a smoke test
    python benchmarks/imitation_vs_prefrl.py --protocol pendulum-tutorial --seeds 1 2 3 4 5
    python benchmarks/imitation_vs_prefrl.py --table-only

Hopper: ``--steps`` should be a multiple of (imitation's rounds = ``--num-iterations`` + 1) x 2048 so
both agents take exactly that many PPO steps (default 147,456 = 6 x 12 x 2048). Pendulum: a multiple
of 2048 over 12,288. Rows are appended to ``OUT/imitation_vs_prefrl.jsonl`` as runs finish; the table
is printed from every row there. Cost on the project's 2-core VM: at 73,728 Hopper steps and 100
labels imitation used ~770 CPU s (prefrl 67); its reward training, 3 epochs over every comparison each
round with one forward per fragment, grows with the label budget, so 700 labels / 147,456 steps is
hours of imitation on a loaded machine.
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

from prefrl.cli.logger import read_metrics

PROTOCOLS: dict[str, dict] = {
    "hopper": {
        "env_id": "Hopper-v5",
        "imitation_env_id": "Hopper-v4",
        "steps": 147_456,
        "labels": 700,
        "segment_length": 188,  # prefrl's --segment-length (None: prefrl's default)
        "fragment_length": 188,  # imitation's, unless --segment-length is given
        "num_eval_episodes": None,  # None: each side's default
        "prefrl_flags": ["--no-early-termination", "--no-control-cost"],
        "prefrl_final": "return_window",
    },
    "pendulum-tutorial": {
        "env_id": "Pendulum-v1",
        "imitation_env_id": "Pendulum-v1",
        "steps": 102_400,
        "labels": 200,
        "segment_length": None,
        "fragment_length": 100,
        "num_eval_episodes": 50,
        "prefrl_flags": [],
        "prefrl_final": "last_tenth",
    },
}


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


def prefrl_final(rows: list[dict], how: str) -> float | None:
    """prefrl's final training return: ``env/return_window`` of the last row (its last 20 episodes),
    or the mean of ``env/episode_return`` over the last tenth of its PPO iterations."""
    if how == "return_window":
        return rows[-1].get("env/return_window")
    iterations = [r for r in rows if "iteration" in r]
    tail = iterations[-max(1, len(iterations) // 10) :]
    returns = [r["env/episode_return"] for r in tail if r.get("env/episode_return") is not None]
    return statistics.fmean(returns) if returns else None


def run_name(library: str, env_id: str, args: argparse.Namespace, seed: int) -> str:
    tag = "" if args.protocol == "hopper" else f"{args.protocol}-"
    return f"{library}-{tag}{env_id}-s{seed}-{args.labels}-{args.steps}"


def run_prefrl(args: argparse.Namespace, seed: int, run_root: Path) -> dict:
    protocol = PROTOCOLS[args.protocol]
    run_dir = run_root / run_name("prefrl", args.env_id, args, seed)
    prefix = shlex.split(args.prefrl) if args.prefrl else [str(Path(sys.executable).parent / "prefrl")]
    argv = [*prefix, "rlhp", "--env-id", args.env_id, *protocol["prefrl_flags"]]
    argv += ["--seed", str(seed), "--total-timesteps", str(args.steps), "--num-labels", str(args.labels)]
    if args.segment_length is not None:
        argv += ["--segment-length", str(args.segment_length)]
    if args.num_eval_episodes is not None:
        argv += ["--num-eval-episodes", str(args.num_eval_episodes)]
    argv += ["--run-dir", str(run_dir)]
    env = dict(os.environ)
    if args.prefrl_pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.prefrl_pythonpath, env.get("PYTHONPATH")]))
    seconds, cpu = timed(argv, run_root / f"{run_dir.name}.log", env)
    rows = read_metrics(run_dir / "metrics.jsonl")
    last = rows[-1]
    return {
        "library": "prefrl", "protocol": args.protocol, "env_id": args.env_id, "seed": seed,
        "steps": int(last["step"]), "labels": int(last.get("preferences/num_labels", 0)),
        "final": prefrl_final(rows, protocol["prefrl_final"]), "final_metric": protocol["prefrl_final"],
        "eval": last.get("eval/return_mean"), "eval_std": last.get("eval/return_std"),
        "seconds": seconds, "cpu_seconds": cpu, "command": shlex.join(argv), "run_dir": str(run_dir),
    }  # fmt: skip


def run_imitation(args: argparse.Namespace, seed: int, run_root: Path) -> dict:
    name = run_name("imitation", args.imitation_env_id, args, seed)
    result = run_root / f"{name}.json"
    fragment_length = args.segment_length or PROTOCOLS[args.protocol]["fragment_length"]
    argv = [args.imitation_python, str(Path(__file__).with_name("imitation_side.py"))]
    argv += ["--protocol", args.protocol, "--env-id", args.imitation_env_id, "--seed", str(seed)]
    argv += ["--total-timesteps", str(args.steps), "--num-labels", str(args.labels)]
    argv += ["--fragment-length", str(fragment_length), "--num-iterations", str(args.num_iterations)]
    if args.num_eval_episodes is not None:
        argv += ["--num-eval-episodes", str(args.num_eval_episodes)]
    argv += ["--log-dir", str(run_root / name), "--result", str(result), *shlex.split(args.imitation_extra)]
    seconds, cpu = timed(argv, run_root / f"{name}.log")
    row = json.loads(result.read_text())
    row.update({"library": "imitation", "seconds": seconds, "cpu_seconds": cpu, "command": shlex.join(argv)})
    return row


def cpu_text(row: dict) -> str:
    return f"{row['cpu_seconds']:.0f}" if row.get("cpu_seconds") is not None else "-"


def num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def compare_returns(p: float | None, i: float | None) -> str:
    """prefrl / imitation when both returns are positive, else the difference (prefrl - imitation)."""
    if p is None or i is None:
        return "-"
    return f"{p / i:.2f}x" if p > 0 and i > 0 else f"{p - i:+.0f}"


def compare_times(p: float | None, i: float | None) -> str:
    return f"{p / i:.2f}x" if p and i else "-"


def group_key(r: dict) -> tuple:
    """Runs comparable across the two libraries: same protocol, agent steps and label budget."""
    return (r.get("protocol", "hopper"), r["steps"], r.get("label_budget", r["labels"]))


def table(rows: list[dict]) -> str:
    """Markdown: one line per run; per group (protocol, steps, labels) each library's median and worst
    seed; then per seed, and for the medians, prefrl against imitation."""
    lines = [
        "| library | protocol | env | seed | steps | labels used / budget | final return | eval return "
        "| wall-clock s | CPU s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        eval_text = num(r["eval"]) + (f" +- {r['eval_std']:.0f}" if r.get("eval_std") is not None else "")
        lines.append(
            f"| {r['library']} | {r.get('protocol', 'hopper')} | {r['env_id']} | {r['seed']} | "
            f"{r['steps']:,} | {r['labels']} / {r.get('label_budget', r['labels'])} | "
            f"{num(r['final'])} | {eval_text} | {r['seconds']:.0f} | {cpu_text(r)} |"
        )
    latest: dict[tuple, dict] = {}
    for r in rows:
        latest[(r["library"], r["seed"], *group_key(r))] = r
    lines += summary(latest)
    ratios = []
    for (library, seed, *group), p in latest.items():
        i = latest.get(("imitation", seed, *group))
        if library == "prefrl" and i is not None:
            protocol, steps, labels = group
            ratios.append(
                f"| {protocol}, seed {seed}, {steps:,} steps, {labels} labels | "
                f"{compare_returns(p['final'], i['final'])} | {compare_returns(p['eval'], i['eval'])} | "
                f"{compare_times(p['seconds'], i['seconds'])} | "
                f"{compare_times(p.get('cpu_seconds'), i.get('cpu_seconds'))} |"
            )
    if ratios:
        lines += [
            "",
            "| prefrl vs imitation (returns: ratio, or prefrl - imitation when negative) | final return "
            "| eval return | wall-clock time | CPU time |",
            "|---|---:|---:|---:|---:|",
            *ratios,
            *median_rows(latest),
        ]
    return "\n".join(lines)


def paired_groups(latest: dict[tuple, dict]) -> dict[tuple, dict[str, list[dict]]]:
    """Per group, each library's runs on the seeds that both libraries ran."""
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for (library, seed, *group), r in latest.items():
        if ("imitation" if library == "prefrl" else "prefrl", seed, *group) in latest:
            groups.setdefault(tuple(group), {}).setdefault(library, []).append(r)
    return groups


def median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def worst(runs: list[dict], key: str) -> str:
    """The lowest return over the seeds, and which seed."""
    scored = [r for r in runs if r.get(key) is not None]
    if not scored:
        return "-"
    r = min(scored, key=lambda r: r[key])
    return f"{r[key]:.0f} (seed {r['seed']})"


def summary(latest: dict[tuple, dict]) -> list[str]:
    """Per group run on several seeds by both libraries: each library's medians and worst seed."""
    lines = []
    for (protocol, steps, labels), runs in paired_groups(latest).items():
        if len(runs["prefrl"]) < 2:
            continue
        if not lines:
            lines = [
                "",
                "| library | protocol, steps, labels | seeds | median final | worst final | median eval "
                "| worst eval | median wall-clock s | median CPU s |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
        for library in ("prefrl", "imitation"):
            rs = runs[library]
            lines.append(
                f"| {library} | {protocol}, {steps:,}, {labels} | {len(rs)} | {num(median(rs, 'final'))} | "
                f"{worst(rs, 'final')} | {num(median(rs, 'eval'))} | {worst(rs, 'eval')} | "
                f"{num(median(rs, 'seconds'))} | {num(median(rs, 'cpu_seconds'))} |"
            )
    return lines


def median_rows(latest: dict[tuple, dict]) -> list[str]:
    """Per group run on several seeds by both: the two libraries' medians compared."""
    rows = []
    for (protocol, steps, labels), runs in paired_groups(latest).items():
        if len(runs["prefrl"]) > 1:
            p, i = runs["prefrl"], runs["imitation"]
            rows.append(
                f"| {protocol}, median of {len(p)} seeds, {steps:,} steps, {labels} labels | "
                f"{compare_returns(median(p, 'final'), median(i, 'final'))} | "
                f"{compare_returns(median(p, 'eval'), median(i, 'eval'))} | "
                f"{compare_times(median(p, 'seconds'), median(i, 'seconds'))} | "
                f"{compare_times(median(p, 'cpu_seconds'), median(i, 'cpu_seconds'))} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="hopper")
    parser.add_argument("--env-id", default=None, help="prefrl's env, gymnasium 1.x (default: protocol's)")
    parser.add_argument(
        "--imitation-env-id", default=None, help="imitation's env, gymnasium 0.29 (default: protocol's)"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--steps", type=int, default=None, help="agent env steps, both sides")
    parser.add_argument("--labels", type=int, default=None)
    parser.add_argument(
        "--segment-length",
        type=int,
        default=None,
        help="steps per segment / fragment, both sides (hopper: 188; pendulum-tutorial: prefrl's "
        "default and imitation's 100)",
    )
    parser.add_argument(
        "--num-iterations", type=int, default=5, help="imitation's PreferenceComparisons rounds"
    )
    parser.add_argument(
        "--num-eval-episodes", type=int, default=None, help="both sides (pendulum-tutorial: 50)"
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
    for key, value in PROTOCOLS[args.protocol].items():
        if getattr(args, key, None) is None and key in vars(args):
            setattr(args, key, value)

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
