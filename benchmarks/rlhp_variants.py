"""Preference learning against its yardstick, in one run: named variants of ``prefrl rlhp`` (flags
added to the defaults) and ``prefrl ppo`` on the true reward, same env, steps and seeds, and a table
of true returns with the normalised return (R - R_random) / (R_PPO - R_random), the median over seeds
and the worst seed.

Every run is a real CLI run with its own run directory under ``--out`` (rows are appended to
``OUT/results.jsonl`` as runs finish: a killed benchmark keeps what it had, and a rerun skips the
runs already there and resumes the unfinished ones from their checkpoints; ``seconds`` then counts
only the last process). ``--jobs`` runs go at once (one torch thread each, refits included;
alone, a run refits on every core). ``final`` = the mean episode return over the last tenth of
the iterations (as ``prefrl demo`` reports it), ``eval`` = the deterministic evaluation at the end
(``--eval-episodes``), R_random = uniformly random actions.

    python benchmarks/rlhp_variants.py --env-id Pendulum-v1 --steps 102400 --labels 200 \
        --seeds 1 2 3 4 5 --variant default= --variant initial="--reward-normalization initial" \
        [--ppo-variant zoo="--num-envs 4 --num-steps 1024 ..."] [--out benchmarks/out/variants]

A variant may set its own ``--num-labels`` (ratings against comparisons at equal human time):

    python benchmarks/rlhp_variants.py --env-id Pendulum-v1 --variant compare-200="--num-labels 200" \
        --variant rate-400="--feedback rate --num-labels 400" --out benchmarks/out/ratings

The "answers" column counts each variant's comparisons and ratings and the time a person would
spend on them (``--seconds-per-comparison`` 4, ``--seconds-per-rating`` 2: one clip instead of two).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from prefrl.cli.demo import late_returns
from prefrl.cli.logger import read_metrics
from prefrl.ppo.evaluate import random_policy_returns
from prefrl.preferences.store import PreferenceStore


def run_one(job: dict, args: argparse.Namespace) -> dict:
    run_dir = args.out / f"{job['kind']}-{job['name']}-s{job['seed']}"
    prefrl = [str(Path(sys.executable).parent / "prefrl"), job["kind"]]
    if (run_dir / "checkpoints" / "last.pt").exists():  # a killed benchmark: its runs continue
        argv = [*prefrl, "--resume", str(run_dir)]
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        argv = [*prefrl, "--env-id", args.env_id, "--seed", str(job["seed"])]
        argv += ["--total-timesteps", str(args.steps), "--run-dir", str(run_dir)]
        argv += ["--num-eval-episodes", str(args.eval_episodes), *shlex.split(job["flags"])]
        if job["kind"] == "rlhp" and "--num-labels" not in job["flags"]:  # a variant may set its own
            argv += ["--num-labels", str(args.labels)]
        if job["kind"] == "rlhp" and args.jobs > 1 and "--reward-trainer.num-threads" not in job["flags"]:
            argv += ["--reward-trainer.num-threads", "1"]  # runs side by side: one core each
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    rows = read_metrics(run_dir / "metrics.jsonl")
    return {
        **job,
        **answers(run_dir, args),
        "final": late_returns(rows)[0],  # as prefrl demo reports it
        "eval": rows[-1].get("eval/return_mean", float("nan")),
        "seconds": time.perf_counter() - start,
        "update_s": sum(r.get("time/update_s", 0.0) for r in rows),
        "rollout_s": sum(r.get("time/rollout_s", 0.0) for r in rows),
        "preferences_s": sum(r.get("time/preferences_s", 0.0) for r in rows),
    }


def answers(run_dir: Path, args: argparse.Namespace) -> dict:
    """Comparisons and ratings answered in a preference run, and the (simulated) person's time they
    stand for: ``--seconds-per-comparison`` each (two clips side by side and a choice; the paper's
    people took 3-5 s), ``--seconds-per-rating`` each (one clip)."""
    store_path = run_dir / "preferences.sqlite"
    if not store_path.exists():
        return {}
    with PreferenceStore(store_path) as store:
        compared, rated = len(store.comparisons()), len(store.ratings(trainable_only=False))
    human_s = compared * args.seconds_per_comparison + rated * args.seconds_per_rating
    return {"comparisons": compared, "ratings": rated, "human_s": human_s}


def table(results: list[dict], random: float, yardstick: str) -> str:
    """Markdown: one row per variant, medians and worst seed, normalised against the median of the
    ``yardstick`` PPO variant."""
    by_name: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        by_name.setdefault((r["kind"], r["name"]), []).append(r)
    ppo = by_name.get(("ppo", yardstick), [])
    yard_final = statistics.median(r["final"] for r in ppo) if ppo else float("nan")
    yard_eval = statistics.median(r["eval"] for r in ppo) if ppo else float("nan")
    lines = [
        f"R_random = {random:.0f}; yardstick: the median over seeds of `prefrl ppo` variant {yardstick!r}",
        "",
        "| run | variant | seeds | answers (human min) | final median (worst) | normalised "
        "| eval median (worst) | normalised | per seed final / eval | s per run |",
        "|---|---|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for (kind, name), rows in by_name.items():
        rows.sort(key=lambda r: r["seed"])
        final = statistics.median(r["final"] for r in rows)
        evaluation = statistics.median(r["eval"] for r in rows)
        worst_final, worst_eval = min(r["final"] for r in rows), min(r["eval"] for r in rows)

        def norm(value: float, yard: float) -> str:
            return f"{(value - random) / (yard - random):.2f}"

        seeds = ", ".join(f"s{r['seed']} {r['final']:.0f} / {r['eval']:.0f}" for r in rows)
        lines.append(
            f"| {kind} | {name} | {len(rows)} | {answered(rows)} | {final:.0f} ({worst_final:.0f}) | "
            f"{norm(final, yard_final)} ({norm(worst_final, yard_final)}) | {evaluation:.0f} "
            f"({worst_eval:.0f}) | {norm(evaluation, yard_eval)} ({norm(worst_eval, yard_eval)}) | {seeds} "
            f"| {statistics.median(r['seconds'] for r in rows):.0f} |"
        )
    return "\n".join(lines)


def answered(rows: list[dict]) -> str:
    """ "C comparisons + R ratings (M min)" of a variant's first seed ("-" for PPO)."""
    if "human_s" not in rows[0]:
        return "-"
    r = rows[0]
    parts = [f"{r[k]} {k}" for k in ("comparisons", "ratings") if r[k]]
    return f"{' + '.join(parts) or '0'} ({r['human_s'] / 60:.0f} min)"


def parse_variants(items: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, _, flags = item.partition("=")
        pairs.append((name, flags))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-id", default="Pendulum-v1")
    parser.add_argument("--steps", type=int, default=102_400)
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--variant", action="append", default=[], help="NAME=FLAGS for prefrl rlhp")
    parser.add_argument("--ppo-variant", action="append", default=[], help="NAME=FLAGS for prefrl ppo")
    parser.add_argument("--no-ppo", action="store_true", help="skip the yardstick (table-only reruns)")
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/variants"))
    parser.add_argument("--seconds-per-comparison", type=float, default=4.0)
    parser.add_argument("--seconds-per-rating", type=float, default=2.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ppo_variants = parse_variants(args.ppo_variant) or ([] if args.no_ppo else [("preset", "")])
    jobs = [
        {"kind": kind, "name": name, "flags": flags, "seed": seed}
        for kind, variants in (("ppo", ppo_variants), ("rlhp", parse_variants(args.variant)))
        for name, flags in variants
        for seed in args.seeds
    ]
    results_file = args.out / "results.jsonl"
    done = [json.loads(line) for line in results_file.open()] if results_file.exists() else []
    have = {(r["kind"], r["name"], r["seed"]) for r in done}
    todo = [j for j in jobs if (j["kind"], j["name"], j["seed"]) not in have]
    with ThreadPoolExecutor(args.jobs) as pool:
        for result in pool.map(lambda job: run_one(job, args), todo):
            print(json.dumps(result), flush=True)
            with results_file.open("a") as f:
                f.write(json.dumps(result) + "\n")
            done.append(result)
    wanted = {(j["kind"], j["name"], j["seed"]) for j in jobs}
    random = float(np.mean(random_policy_returns(args.env_id, 50, 10_000)))
    yardstick = ppo_variants[0][0] if ppo_variants else "preset"
    print(table([r for r in done if (r["kind"], r["name"], r["seed"]) in wanted], random, yardstick))


if __name__ == "__main__":
    main()
