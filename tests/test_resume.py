"""A run killed part-way (a real signal to a real process) resumes from its last checkpoint and
continues the step count, appending to its metrics without gaps or duplicates."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from prefrl.checkpoint import load_checkpoint
from prefrl.cli.logger import read_metrics

BATCH = 8 * 128
ARGS = [
    "--env-id", "CartPole-v1", "--total-timesteps", str(200 * BATCH), "--num-envs", "8",
    "--num-steps", "128", "--checkpoint-every", "3", "--num-eval-episodes", "0",
]  # fmt: skip


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "prefrl", "ppo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_rows(metrics: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if metrics.exists() and len(read_metrics(metrics)) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"no {n} metric rows after {timeout} s")


def assert_contiguous(rows: list[dict], last_step: int) -> None:
    steps = [row["step"] for row in rows]
    assert steps == list(range(BATCH, last_step + 1, BATCH)), steps
    assert [row["iteration"] for row in rows] == list(range(1, len(rows) + 1))


def test_sigkill_then_resume_continues_without_gaps_or_duplicates(tmp_path):
    run_dir = tmp_path / "run"
    proc = start(*ARGS, "--run-dir", str(run_dir))
    wait_for_rows(run_dir / "metrics.jsonl", 8, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_rows = read_metrics(run_dir / "metrics.jsonl")
    checkpoint_step = load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"]
    assert 3 * BATCH <= checkpoint_step < 200 * BATCH
    assert len(killed_rows) * BATCH >= checkpoint_step  # rows past the checkpoint are to be dropped

    resumed = start("--resume", str(run_dir))
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert_contiguous(rows, 200 * BATCH)
    # the rows up to the checkpoint are the killed run's own, unchanged
    n_kept = checkpoint_step // BATCH
    assert rows[:n_kept] == killed_rows[:n_kept]


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    run_dir = tmp_path / "run"
    proc = start(*ARGS, "--checkpoint-every", "1000", "--run-dir", str(run_dir))
    wait_for_rows(run_dir / "metrics.jsonl", 4, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"--resume {run_dir}" in " ".join(err.split())
    rows = read_metrics(run_dir / "metrics.jsonl")
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["global_step"] == rows[-1]["step"]  # nothing trained is lost


def test_a_killed_preference_run_resumes_and_keeps_every_answer(tmp_path):
    from prefrl.preferences.store import PreferenceStore

    run_dir, batch, iterations = tmp_path / "rlhp", 4 * 256, 30
    args = [
        "--env-id", "Pendulum-v1", "--num-envs", "4", "--num-steps", "256", "--num-minibatches", "4",
        "--update-epochs", "2", "--total-timesteps", str(iterations * batch), "--checkpoint-every", "2",
        "--num-labels", "120", "--reward-trainer.num-epochs", "2", "--num-eval-episodes", "0",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefrl", "rlhp", *args, "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_rows(run_dir / "metrics.jsonl", 7, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    answered_before = {
        (c.segment_1, c.segment_2, c.label)
        for c in PreferenceStore(run_dir / "preferences.sqlite").comparisons()
    }
    assert answered_before

    resumed = subprocess.run(
        [sys.executable, "-m", "prefrl", "rlhp", "--resume", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(batch, iterations * batch + 1, batch))
    store = PreferenceStore(run_dir / "preferences.sqlite")
    answered_after = {(c.segment_1, c.segment_2, c.label) for c in store.comparisons()}
    assert answered_before <= answered_after  # no answer is lost
    assert store.num_queries() <= 120  # the budget holds across the restart


def test_ctrl_c_to_the_whole_process_group_checkpoints_a_preference_run_with_its_refit_process(tmp_path):
    """A terminal's Ctrl-C reaches the refit process too: it must outlive the parent's checkpoint
    (which takes the child's trainer state), so the run stops as any run does and can resume."""
    run_dir = tmp_path / "run"
    args = ["--env-id", "Pendulum-v1", "--total-timesteps", "204800", "--num-eval-episodes", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefrl", "rlhp", *args, "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_rows(run_dir / "metrics.jsonl", 5, proc)  # past the first refits in the child
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert f"--resume {run_dir}" in " ".join(err.split())
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["global_step"] == read_metrics(run_dir / "metrics.jsonl")[-1]["step"]
    assert state["rlhp"]["reward_trainer"]["optimizer"]["state"]  # the child's, taken at the stop
