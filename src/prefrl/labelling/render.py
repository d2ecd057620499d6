"""Clips of segments for people: each segment is rendered once, from its per-step render states, to
a small H.264 mp4 (yuv420p, faststart; Debian's Chromium plays it) cached beside the store.

MuJoCo renders offscreen (``MUJOCO_GL=egl``), classic control through pygame (SDL dummy driver), in
worker processes that keep their env; a clip a page waits for is rendered before clips rendered in
advance; requests wait on futures.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import multiprocessing
import os
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

CLIP_FPS = 25
"""Target frame rate: steps are skipped so that clips play in simulated real time near this rate."""
MUJOCO_SIZE = (320, 240)
"""Width, height of MuJoCo clips (small: software EGL rendering costs ~50-150 ms a frame)."""

PARENT_POLL_S = 0.5
"""How often the rendering process checks that the server still runs."""

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
    name = env_id.split(":")[-1].split("/")[-1].split("-")[0]
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
    from prefrl.envs.render_state import follow_body, set_render_state

    skip, fps = frame_skip(env)
    frames = []
    for state in states[::skip]:
        set_render_state(env, state)
        follow_body(env)
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


_WORKER_ENVS: dict[str, Any] = {}
"""The rendering process's envs, one per env id (made on first use, kept for the next clips)."""


def render_clip(env_id: str, states: np.ndarray, path: Path) -> Path:
    """Render one clip to ``path`` unless it exists (runs in the rendering process): from simulator
    states, or straight from recorded frames ((S, H, W, 3) uint8, envs without a state)."""
    if not path.exists():
        if states.dtype == np.uint8 and states.ndim == 4:
            write_mp4(list(states), frames_fps(env_id), path)
            return path
        if env_id not in _WORKER_ENVS:
            _WORKER_ENVS[env_id] = make_render_env(env_id)
        frames, fps = render_frames(_WORKER_ENVS[env_id], states)
        write_mp4(frames, fps, path)
    return path


def frames_fps(env_id: str) -> float:
    """Frames per second of an env's recorded frames (one per step): its ``render_fps``, else 25;
    Atari 15 (one step is 4 of its 60 frames a second)."""
    import gymnasium as gym

    from prefrl.envs.atari import is_atari
    from prefrl.envs.make import import_env_module, split_env_id

    if is_atari(env_id):
        return 15.0
    module, _ = split_env_id(env_id)
    if module is not None:
        import_env_module(module)
    env = gym.make(env_id)
    fps = float(env.metadata.get("render_fps") or CLIP_FPS)
    env.close()
    return fps


def _worker_init() -> None:
    """Rendering process set-up: offscreen back ends, and exit once the server is gone (even after a
    SIGKILL, which leaves no chance to shut the pool down)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    parent = os.getppid()

    def exit_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()


def default_workers() -> int:
    """Rendering processes: the cores less one for training and the server, 1 to 4."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


MAX_QUEUED_AHEAD = 8
"""Clips rendered in advance that may wait at once; more requests in advance are dropped (the page
asks for them when it needs them, and then they go first)."""


class ClipRenderer:
    """Renders segment clips of ``env_id`` into ``clip_dir`` (``{segment id}.mp4``), once each, in
    ``workers`` separate processes (rendering holds the GIL for long stretches, and training runs in
    this one). A clip a page is waiting for goes before clips rendered in advance; at most
    ``MAX_QUEUED_AHEAD`` of those wait at once. ``executor``: another pool (tests)."""

    URGENT, AHEAD = 0, 1

    def __init__(
        self, env_id: str, clip_dir: Path, workers: int | None = None, executor: Executor | None = None
    ) -> None:
        self.env_id = env_id
        self.clip_dir = Path(clip_dir)
        self.clip_dir.mkdir(parents=True, exist_ok=True)
        self.workers = workers or default_workers()
        self.executor = executor or ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
        )
        self.lock = threading.RLock()  # a job already done runs its callback inside submit's caller
        self.futures: dict[int, Future[Path]] = {}
        """Every clip requested: its future (done once rendered, or failed)."""
        self.waiting: list[tuple[int, int, int]] = []
        """Heap of (priority, order, segment id) not yet handed to a worker (stale entries skipped)."""
        self.states: dict[int, tuple[int, np.ndarray]] = {}
        """Segment id -> (priority, states) of the clips waiting for a worker."""
        self.running = 0
        self.order = itertools.count()

    def path(self, segment_id: int) -> Path:
        return self.clip_dir / f"{int(segment_id)}.mp4"

    def request(self, segment_id: int, states: np.ndarray, urgent: bool = True) -> Future[Path]:
        """A future of the clip's path; rendered at most once (cached on disk). ``urgent``: a page is
        waiting for it (it goes first); else rendered in advance, when a worker is free."""
        priority = self.URGENT if urgent else self.AHEAD
        with self.lock:
            future = self.futures.get(segment_id)
            if future is not None and not (future.done() and future.exception() is not None):
                waiting = self.states.get(segment_id)
                if waiting is not None and priority < waiting[0]:  # now a page waits for it
                    self.states[segment_id] = (priority, waiting[1])
                    heapq.heappush(self.waiting, (priority, next(self.order), segment_id))
                    self._dispatch()
                return future
            future = Future()
            path = self.path(segment_id)
            if path.exists():
                future.set_result(path)
            elif not urgent and sum(p == self.AHEAD for p, _ in self.states.values()) >= MAX_QUEUED_AHEAD:
                future.cancel()  # too many in advance: the page will ask for it when it needs it
                return future
            else:
                self.states[segment_id] = (priority, states)
                heapq.heappush(self.waiting, (priority, next(self.order), segment_id))
            self.futures[segment_id] = future
            self._dispatch()
            return future

    def _dispatch(self) -> None:
        """Hand waiting clips to free workers, most urgent first (called with the lock held)."""
        while self.running < self.workers and self.waiting:
            priority, _, segment_id = heapq.heappop(self.waiting)
            entry = self.states.get(segment_id)
            if entry is None or entry[0] != priority:
                continue  # rendered already, or re-queued as urgent
            del self.states[segment_id]
            self.running += 1
            try:
                job = self.executor.submit(render_clip, self.env_id, entry[1], self.path(segment_id))
            except RuntimeError as exc:  # shut down
                self.running -= 1
                self.futures[segment_id].set_exception(exc)
                continue
            job.add_done_callback(functools.partial(self._finished, segment_id))

    def _finished(self, segment_id: int, job: Future[Path]) -> None:
        with self.lock:
            self.running -= 1
            future = self.futures[segment_id]
            error = job.exception() if not job.cancelled() else RuntimeError("rendering was cancelled")
            if error is None:
                future.set_result(job.result())
            else:
                future.set_exception(error)
            self._dispatch()

    def close(self) -> None:
        """Stop rendering: waiting clips are dropped, the ones being rendered are finished."""
        with self.lock:
            self.waiting.clear()
            for segment_id in list(self.states):
                self.futures[segment_id].cancel()
            self.states.clear()
        self.executor.shutdown(wait=True, cancel_futures=True)
