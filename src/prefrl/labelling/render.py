"""Clips of segments for people: each segment is rendered once, from its per-step render states, to
a small H.264 mp4 (yuv420p, faststart; Debian's Chromium plays it) cached beside the store.

MuJoCo renders offscreen (``MUJOCO_GL=egl``), classic control through pygame (SDL dummy driver). One
worker thread owns the rendering env (GL contexts belong to a thread); requests wait on its futures.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

CLIP_FPS = 25
"""Target frame rate: steps are skipped so that clips play in simulated real time near this rate."""
MUJOCO_SIZE = (320, 240)
"""Width, height of MuJoCo clips (small: software EGL rendering costs ~50-150 ms a frame)."""

TASK_DESCRIPTIONS = {
    "Hopper": "Which robot hops forward (to the right) better, staying upright?",
    "Walker2d": "Which robot walks forward (to the right) better, staying upright?",
    "HalfCheetah": "Which robot runs forward (to the right) faster?",
    "Ant": "Which robot moves forward faster?",
    "Swimmer": "Which swimmer moves forward (to the right) faster?",
    "Reacher": "Which arm brings its tip closer to the red target?",
    "InvertedPendulum": "Which pole stays upright better?",
    "InvertedDoublePendulum": "Which double pole stays upright better?",
    "Pendulum": "Which pendulum is closer to standing straight up, and steadier?",
    "CartPole": "Which pole stays upright and the cart near the centre better?",
    "MountainCar": "Which car gets closer to the flag on the right hilltop?",
    "Acrobot": "Which swinging arm lifts its tip higher?",
}
TEXT_DESCRIPTION = "Which response answers the prompt better?"


def task_description(env_id: str | None) -> str:
    """The one-line question shown above the clips for ``env_id``."""
    if env_id is None:
        return TEXT_DESCRIPTION
    name = env_id.split("/")[-1].split("-")[0]
    return TASK_DESCRIPTIONS.get(name, f"{env_id}: which clip does the task better?")


def make_render_env(env_id: str) -> Any:
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import gymnasium as gym

    try:
        width, height = MUJOCO_SIZE
        env = gym.make(env_id, render_mode="rgb_array", width=width, height=height)
    except TypeError:  # classic control has a fixed size
        env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)  # gymnasium renders only after a reset; the states are then set step by step
    _plain_mujoco_scene(env)
    return env


def _plain_mujoco_scene(env: Any) -> None:
    """No shadows or floor reflections: software EGL renders 2-3x faster, the motion reads the same."""
    renderer = getattr(env.unwrapped, "mujoco_renderer", None)
    if renderer is None:
        return
    import mujoco

    try:
        scene = renderer._get_viewer("rgb_array").scn
    except AttributeError:  # another gymnasium renderer layout: keep its defaults
        return
    scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0


def frame_skip(env: Any) -> tuple[int, float]:
    """(steps per frame, frames per second) so that a clip plays in simulated real time."""
    unwrapped = env.unwrapped
    dt = getattr(unwrapped, "dt", None) or getattr(unwrapped, "tau", None)
    steps_per_second = 1.0 / dt if dt else float(env.metadata.get("render_fps") or CLIP_FPS)
    skip = max(1, round(steps_per_second / CLIP_FPS))
    return skip, steps_per_second / skip


def render_frames(env: Any, states: np.ndarray) -> tuple[list[np.ndarray], float]:
    """(S, K) render states -> frames (H, W, 3) uint8 and their fps (``env`` from make_render_env)."""
    from prefrl.envs.render_state import set_render_state

    skip, fps = frame_skip(env)
    frames = []
    for state in states[::skip]:
        set_render_state(env, state)
        frames.append(np.asarray(env.render(), dtype=np.uint8))
    return frames, fps


def write_mp4(frames: list[np.ndarray], fps: float, path: Path) -> None:
    """H.264 mp4 written to a temporary name and renamed, so a reader never sees half a file."""
    import imageio.v2 as imageio

    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp.mp4")
    with imageio.get_writer(
        tmp, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=2,
        ffmpeg_params=["-movflags", "+faststart"], ffmpeg_log_level="error",
    ) as writer:  # fmt: skip
        for frame in frames:
            writer.append_data(frame)  # type: ignore[attr-defined]
    tmp.replace(path)


class ClipRenderer:
    """Renders segment clips of ``env_id`` into ``clip_dir`` (``{segment id}.mp4``), once each."""

    def __init__(self, env_id: str, clip_dir: Path) -> None:
        self.env_id = env_id
        self.clip_dir = Path(clip_dir)
        self.clip_dir.mkdir(parents=True, exist_ok=True)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefrl-clips")
        self.lock = threading.Lock()
        self.futures: dict[int, Future[Path]] = {}
        self.env: Any = None

    def path(self, segment_id: int) -> Path:
        return self.clip_dir / f"{int(segment_id)}.mp4"

    def request(self, segment_id: int, states: np.ndarray) -> Future[Path]:
        """A future of the clip's path; rendered at most once (cached on disk)."""
        with self.lock:
            future = self.futures.get(segment_id)
            if future is None or (future.done() and future.exception() is not None):
                future = self.executor.submit(self._render, segment_id, states)
                self.futures[segment_id] = future
            return future

    def _render(self, segment_id: int, states: np.ndarray) -> Path:
        path = self.path(segment_id)
        if not path.exists():
            if self.env is None:
                self.env = make_render_env(self.env_id)
            frames, fps = render_frames(self.env, states)
            write_mp4(frames, fps, path)
        return path

    def close(self) -> None:
        """Stop rendering (queued clips are dropped) and close the env in the thread that owns it."""
        with self.lock:
            for future in self.futures.values():
                future.cancel()
        self.executor.submit(self._close_env).result()
        self.executor.shutdown(wait=True)

    def _close_env(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None
