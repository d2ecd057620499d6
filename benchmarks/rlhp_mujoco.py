"""The 2017 paper's headline on MuJoCo: an agent trained from N synthetic preferences against PPO on
the true reward, at the same number of env steps, as a ratio of true returns.

Every run is a real `prefrl` CLI run (its own run directory under ``--out``), one after the other in
this process's machine, same seeds and steps for both. The paper's env variant is used for all of
them (no early termination where the env has it, no control cost in the reward: people cannot see
torque), so PPO on the true reward and the preference agent solve the same task. Returns are the
env's true return: ``final`` = mean of the last 20 training episodes, ``eval`` = the 10-episode
deterministic evaluation at the end. Rows are appended to ``OUT/results.jsonl`` as runs finish (a
killed benchmark keeps what it had), and the table is printed from all rows found there.

    python benchmarks/rlhp_mujoco.py --envs Hopper-v5 HalfCheetah-v5 Swimmer-v5 --labels 700 1400 \
        --seeds 1 --steps 301056 [--out benchmarks/out/rlhp_mujoco] [--extra "--reward-model.noise 0"]
    python benchmarks/rlhp_mujoco.py --table-only
"""

from __future__ import annotations

import argparse
import inspect
import json
import shlex
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import gymnasium as gym

from prefrl.cli.logger import read_metrics


def variant_flags(env_id: str) -> list[str]:
    """The paper's variant, where the env has the option: no early termination, no control cost."""
    creator = gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point)
    params = inspect.signature(creator).parameters
    flags = ["--no-control-cost"] if "ctrl_cost_weight" in params else []
    return flags + (["--no-early-termination"] if "terminate_when_unhealthy" in params else [])


def run(
    kind: str, env_id: str, seed: int, steps: int, labels: int | None, out: Path, extra: list[str]
) -> dict:
    name = (
        f"{kind}-{env_id}-s{seed}"
        + (f"-{labels}" if labels else "")
        + ("-" + "_".join(extra) if extra else "")
    )
    run_dir = out / name.replace("--", "").replace("/", "_")
    argv = [str(Path(sys.executable).parent / "prefrl"), kind, "--env-id", env_id, "--seed", str(seed)]
    argv += ["--total-timesteps", str(steps), *variant_flags(env_id), "--run-dir", str(run_dir), *extra]
    if labels:
        argv += ["--num-labels", str(labels)]
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    rows = read_metrics(run_dir / "metrics.jsonl")
    last = rows[-1]
    return {
        "kind": kind, "env_id": env_id, "seed": seed, "labels": labels, "extra": " ".join(extra),
        "steps": int(last["step"]), "seconds": round(seconds, 1),
        "final": last.get("env/return_window"), "eval": last.get("eval/return_mean"),
        "num_labels_used": last.get("preferences/num_labels"), "run_dir": str(run_dir),
    }  # fmt: skip


def ratio(runs: list[dict], base: list[dict], key: str) -> str:
    """Median of the preference runs' returns over the median of PPO's (the seeds of the two are not
    paired: the same seed shares nothing once the runs diverge); "-" where PPO's median is not
    positive (a ratio of returns that can be negative, as Pendulum's, means nothing)."""
    ppo = statistics.median(b[key] for b in base)
    return "-" if ppo <= 0 else f"{statistics.median(r[key] for r in runs) / ppo:.2f}x"


def table(rows: list[dict]) -> str:
    """Markdown: per env and label budget, the medians over seeds of the true returns, their ratio,
    and each seed's (preference, PPO) training returns."""
    ppo = {(r["env_id"], r["seed"]): r for r in rows if r["kind"] == "ppo"}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r["kind"] == "rlhp" and (r["env_id"], r["seed"]) in ppo:
            groups[(r["env_id"], r["labels"], r["extra"])].append(r)
    lines = [
        "| env | labels | seeds | steps | PPO final / eval | prefrl rlhp final / eval | ratio final / eval "
        "| rlhp s | PPO s | per seed: rlhp / PPO final |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (env_id, labels, extra), runs in sorted(groups.items()):
        runs = sorted(runs, key=lambda r: r["seed"])
        base = [ppo[(env_id, r["seed"])] for r in runs]

        def med(key: str, rs: list[dict]) -> float:
            return statistics.median(r[key] for r in rs)

        label = f"{labels}" + (f" ({extra})" if extra else "")
        seeds = ", ".join(
            f"s{r['seed']} {r['final']:.0f} / {b['final']:.0f}" for r, b in zip(runs, base, strict=True)
        )
        lines.append(
            f"| {env_id} | {label} | {len(runs)} | {runs[0]['steps']:,} | {med('final', base):.0f} / "
            f"{med('eval', base):.0f} | {med('final', runs):.0f} / {med('eval', runs):.0f} | "
            f"{ratio(runs, base, 'final')} / {ratio(runs, base, 'eval')} | {med('seconds', runs):.0f} | "
            f"{med('seconds', base):.0f} | {seeds} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=["Hopper-v5", "HalfCheetah-v5", "Swimmer-v5"])
    parser.add_argument("--labels", nargs="+", type=int, default=[700, 1400])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--steps", type=int, default=301_056)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/rlhp_mujoco"))
    parser.add_argument("--extra", default="", help='more `prefrl rlhp` flags, quoted (an ablation): "--x 1"')
    parser.add_argument("--skip-ppo", action="store_true", help="reuse PPO rows already in --out")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    results = args.out / "results.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for seed in args.seeds:
            for env_id in args.envs:
                plan = [] if args.skip_ppo else [("ppo", None, [])]
                plan += [("rlhp", n, shlex.split(args.extra)) for n in args.labels]
                for kind, labels, extra in plan:
                    row = run(kind, env_id, seed, args.steps, labels, args.out, extra)
                    with results.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    print(table(rows))


if __name__ == "__main__":
    main()
