"""End-to-end CLI runs with tiny budgets, and bad input: one line on stderr, exit 2, nothing written."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from prefrl.cli.logger import read_metrics
from prefrl.cli.main import main

TINY = [
    "--total-timesteps",
    "512",
    "--num-envs",
    "4",
    "--num-steps",
    "64",
    "--num-eval-episodes",
    "2",
]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL="egl", SDL_VIDEODRIVER="dummy")
    return subprocess.run(
        [sys.executable, "-m", "prefrl", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "cartpole"
    assert main(["ppo", "--env-id", "CartPole-v1", *TINY, "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_ppo_writes_a_complete_run_directory(cartpole_run):
    config = json.loads((cartpole_run / "config.json").read_text())
    assert config["kind"] == "ppo" and config["config"]["total_timesteps"] == 512
    assert config["config"]["learning_rate"] > 0  # the CartPole preset filled in the rest
    versions = config["versions"]  # what the run's figures depend on
    assert versions["torch"] == torch.__version__
    assert versions["gymnasium"] == gym.__version__ and "python" in versions and "prefrl" in versions
    rows = read_metrics(cartpole_run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [256, 512]
    assert "eval/return_mean" in rows[-1] and "ppo/approx_kl" in rows[0]
    assert (cartpole_run / "checkpoints" / "last.pt").stat().st_size > 0
    assert any((cartpole_run / "tb").iterdir())
    assert (cartpole_run / "plots" / "learning_curves.png").stat().st_size > 10_000


def test_plot_and_video_commands(cartpole_run, tmp_path):
    png = tmp_path / "curves.png"
    assert main(["plot", str(cartpole_run), "--output", str(png)]) == 0
    assert iio.imread(png).shape[0] > 300
    video = tmp_path / "cartpole.mp4"
    argv = ["video", str(cartpole_run), "--output", str(video), "--max-frames", "30", "--num-episodes", "10"]
    assert main(argv) == 0  # 512 steps of training: short episodes, so several are recorded
    frames = list(iio.imiter(video))
    assert len(frames) == 30 and frames[0].shape == (400, 600, 3)
    assert frames[0].std() > 1  # a picture, not a blank frame


def test_mujoco_run_and_offscreen_video(tmp_path):
    run_dir = tmp_path / "hopper"
    args = [
        "--total-timesteps",
        "128",
        "--num-steps",
        "128",
        "--num-minibatches",
        "2",
        "--num-eval-episodes",
        "1",
    ]
    assert main(["ppo", "--env-id", "Hopper-v5", *args, "--run-dir", str(run_dir)]) == 0
    video = tmp_path / "hopper.mp4"
    assert main(["video", str(run_dir), "--output", str(video), "--max-frames", "10"]) == 0
    frames = list(iio.imiter(video))
    assert len(frames) >= 5 and frames[0].std() > 1


BAD_INPUT = [
    (["ppo", "--env-id", "NoSuchEnv-v0"], "unknown env id"),
    (["ppo", "--env-id", "CartPol-v1"], "did you mean CartPole-v1"),
    (["ppo", "--env-id", "Blackjack-v1"], "observation space"),
    (["ppo", "--learning-rate", "-0.1"], "learning_rate must be > 0"),
    (["ppo", "--num-envs", "0"], "num_envs must be > 0"),
    (["ppo", "--num-envs", "3", "--num-steps", "5", "--num-minibatches", "4"], "does not divide"),
    (["ppo", "--gamma", "1.5"], "gamma must be in [0, 1]"),
    (["ppo", "--target-kl", "0"], "target_kl"),
    (["ppo", "--device", "tpu9"], "unknown device"),
    (["ppo", "--rollout-device", "tpu9"], "--rollout-device: unknown device"),
    (["rlhp", "--rollout-device", "tpu9"], "--rollout-device: unknown device"),
    (["video", "does-not-exist"], "not a prefrl run directory"),
    (["plot", "does-not-exist"], "not a prefrl run directory"),
    (["frobnicate"], "unknown command"),
    (["rlhp", "--env-id", "Nope-v0"], "unknown env id"),
    (["ppo", "--env-id", "Pendulum-v1", "--no-early-termination"], "does not take --no-early-termination"),
    (["rlhp", "--num-labels", "0"], "num_labels must be > 0"),
    (["rlhp", "--reward-model.noise", "1.5"], "noise must be in [0, 1)"),
    (["rlhp", "--teacher.error-rate", "0.9"], "error_rate must be in [0, 0.5]"),
    (["rlhp", "--reward-trainer.batch-size", "-1"], "batch_size must be > 0"),
    (["rlhp", "--resume", "somewhere"], "not a prefrl run directory"),
    (["rlhp", "--env-id", "Pendulum-v1", "--segment-length", "500"], "longer than Pendulum-v1's episodes"),
]


@pytest.mark.parametrize("argv,message", BAD_INPUT)
def test_bad_input_is_one_line_and_writes_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    extra = ["--run-dir", "run"] if argv[0] in ("ppo", "rlhp") else []
    assert main(argv + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    result = run_cli("ppo", "--env-id", "Nope-v0", "--run-dir", "r", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown env id") and "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_resume_refuses_other_directories_and_other_configs(cartpole_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    before = (cartpole_run / "metrics.jsonl").read_text()
    cases = [
        (["--resume", str(tmp_path / "empty")], "not a prefrl run directory"),
        (
            ["--resume", str(cartpole_run), "--learning-rate", "0.5"],
            "does not match the run's config",
        ),
        (["--run-dir", str(cartpole_run)], "already exists"),
    ]
    for argv, message in cases:
        assert main(["ppo", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err
    assert (cartpole_run / "metrics.jsonl").read_text() == before
    assert list((tmp_path / "empty").iterdir()) == []


def test_resuming_a_finished_run_changes_nothing(cartpole_run, capsys):
    before = (cartpole_run / "metrics.jsonl").read_text()
    assert main(["ppo", "--resume", str(cartpole_run)]) == 0
    assert "already finished" in capsys.readouterr().err
    assert (cartpole_run / "metrics.jsonl").read_text() == before


def test_resuming_a_preference_run_with_other_settings_names_them(tmp_path, capsys):
    run_dir = tmp_path / "rlhp"
    args = [
        "--env-id",
        "Pendulum-v1",
        "--total-timesteps",
        "4096",
        "--num-labels",
        "20",
        "--num-eval-episodes",
        "0",
    ]
    assert main(["rlhp", *args, "--run-dir", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["rlhp", "--resume", str(run_dir), "--reward-model.num-members", "5"]) == 2
    err = capsys.readouterr().err
    assert "reward_model.num_members=5 (run has 3)" in err and "\n" not in err.strip()


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("ppo", "demo", "plot", "video"))


class _BrokenObsEnv(gym.Env):
    """Observations of the wrong shape (mode 'shape') or NaN (mode 'nan') after a few steps."""

    observation_space = gym.spaces.Box(-1, 1, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, mode: str = "nan") -> None:
        self.mode, self.t = mode, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.zeros(3, np.float32)
        if self.t >= 5:
            obs = np.zeros(4, np.float32) if self.mode == "shape" else np.full(3, np.nan, np.float32)
        return obs, 0.0, False, False, {}


@pytest.mark.parametrize("mode,message", [("nan", "NaN or inf at step 5"), ("shape", r"shape \(4,\)")])
def test_an_env_with_bad_observations_is_one_line_and_writes_nothing(mode, message, tmp_path, capsys):
    gym.register(f"prefrl-test/BrokenObs-{mode}-v0", entry_point=_BrokenObsEnv, kwargs={"mode": mode})
    run = tmp_path / "run"
    assert main(["ppo", "--env-id", f"prefrl-test/BrokenObs-{mode}-v0", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and re.search(message, err), err
    assert not run.exists()
