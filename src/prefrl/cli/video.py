"""Render a trained agent to a video file (MuJoCo offscreen through EGL, classic control via pygame)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from prefrl.cli.run_dir import CHECKPOINT_FILE, env_file_name, read_run_config
from prefrl.envs.make import make_env
from prefrl.envs.render_state import follow_body
from prefrl.ppo.evaluate import load_agent


def record_video(
    run_dir: Path,
    output: Path | None = None,
    num_episodes: int = 1,
    max_frames: int = 1000,
    seed: int = 0,
) -> tuple[Path, int, list[float]]:
    """Roll out the run's deterministic policy with ``render_mode="rgb_array"`` and write an mp4.

    Returns the video path, the number of frames and the episode returns.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import imageio.v2 as imageio

    run_dir = Path(run_dir)
    read_run_config(run_dir)  # a clear error for a directory that is not a run
    config, agent = load_agent(run_dir / CHECKPOINT_FILE)
    output = output or run_dir / "videos" / f"{env_file_name(config.env_id)}.mp4"
    output.parent.mkdir(parents=True, exist_ok=True)
    env = make_env(config.env_id, render_mode="rgb_array", **config.env_kwargs)
    fps = int(env.metadata.get("render_fps", 30))
    frames = 0
    returns: list[float] = []
    try:
        with imageio.get_writer(output, fps=fps, macro_block_size=2) as writer:
            for episode in range(num_episodes):
                obs, _ = env.reset(seed=seed + episode)
                total, done = 0.0, False
                while not done and frames < max_frames:
                    follow_body(env)
                    writer.append_data(np.asarray(env.render()))  # type: ignore[attr-defined]
                    frames += 1
                    obs, reward, term, trunc, _ = env.step(agent.act(obs))
                    total += float(reward)
                    done = bool(term or trunc)
                returns.append(total)
                if frames >= max_frames:
                    break
    finally:
        env.close()
    return output, frames, returns
