"""The simulator state behind each observation, reported in ``info`` so that clips of segments can be
rendered later (MuJoCo observations omit positions, so observations alone cannot be drawn). An env
with no state to set (Box2D, Atari, most users' envs) reports its rendered frame instead, small and
uint8, when it renders ``rgb_array`` frames."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

RENDER_STATE_KEY = "render_state"
"""The ``info`` key that :class:`RenderStateInfo` fills (a vector env stacks it to (B, K))."""


CLIP_FRAMES = "prefrl_clip_frames"
"""Vector-env metadata key: True when its clips come from recorded frames (``RenderStateInfo.record``
then switches the drawing on and off)."""

FRAME_WIDTH = 160
"""Widest frame kept for a clip (larger frames are subsampled): about 40 KB a step at 4:3."""


def has_render_state(env: gym.Env) -> bool:
    """Whether the env's simulator state can be read and set (MuJoCo data, a classic-control state)."""
    unwrapped: Any = env.unwrapped
    data = getattr(unwrapped, "data", None)
    return (data is not None and hasattr(data, "qpos")) or getattr(unwrapped, "state", None) is not None


def frame_of(env: gym.Env) -> np.ndarray:
    """(H, W, 3) uint8: the env's current frame, subsampled to at most ``FRAME_WIDTH`` wide."""
    frame = np.asarray(env.render(), dtype=np.uint8)
    stride = max(1, -(-frame.shape[1] // FRAME_WIDTH))
    return np.ascontiguousarray(frame[::stride, ::stride, :3])


def get_render_state(env: gym.Env) -> np.ndarray:
    """(K,) float64 state of the unwrapped env: MuJoCo qpos then qvel, classic control ``state``."""
    unwrapped: Any = env.unwrapped
    data = getattr(unwrapped, "data", None)
    if data is not None and hasattr(data, "qpos"):
        return np.concatenate([data.qpos, data.qvel]).astype(np.float64)
    state = getattr(unwrapped, "state", None)
    if state is None:
        raise ValueError(
            f"{env.spec.id if env.spec else env}: cannot read a render state (neither MuJoCo data nor a "
            "classic-control `state`): clips for people are available for MuJoCo and classic-control envs"
        )
    return np.asarray(state, dtype=np.float64).copy()


def set_render_state(env: gym.Env, state: np.ndarray) -> None:
    """Put the unwrapped env into ``state`` (as :func:`get_render_state` returned it)."""
    unwrapped: Any = env.unwrapped
    if getattr(unwrapped, "data", None) is not None and hasattr(unwrapped, "set_state"):
        nq = unwrapped.model.nq
        unwrapped.set_state(state[:nq], state[nq:])
    else:
        unwrapped.state = np.asarray(state, dtype=np.float64)


def follow_body(env: gym.Env) -> None:
    """Point a MuJoCo env's rendering camera at the body its camera config tracks (``trackbodyid``),
    before a frame is rendered: gymnasium renders with a free camera that stays where the episode
    began, so a robot that moves walks out of the picture. No-op for other envs."""
    unwrapped: Any = env.unwrapped
    renderer = getattr(unwrapped, "mujoco_renderer", None)
    config = getattr(renderer, "default_cam_config", None) or {}
    body = config.get("trackbodyid", -1)
    if renderer is None or body is None or body < 0:
        return
    try:
        camera = renderer._get_viewer(getattr(unwrapped, "render_mode", None) or "rgb_array").cam
    except AttributeError:  # another gymnasium renderer layout: keep its camera
        return
    camera.lookat[:2] = unwrapped.data.xpos[body][:2]


class RenderStateInfo(gym.Wrapper):
    """Adds ``info["render_state"]``: the state after ``reset``/``step``, i.e. behind the returned
    observation; for an env without one, its frame (it must render ``rgb_array``)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.frames: bool | None = None
        """Whether clips come from frames (decided at the first reset: classic-control envs have
        their ``state`` from then on)."""
        self.record = True
        """Frames only: whether to draw them now (off: the info has no render state, at no cost)."""

    def _decide(self) -> None:
        self.frames = not has_render_state(self.env)
        if self.frames and self.env.render_mode != "rgb_array":
            raise ValueError(
                f"{self.env.spec.id if self.env.spec else self.env} has no simulator state to draw clips "
                "from, and does not render rgb_array frames: give it render_mode='rgb_array'"
            )

    def _with_state(self, info: dict[str, Any]) -> dict[str, Any]:
        if not self.frames:
            return {**info, RENDER_STATE_KEY: get_render_state(self.env)}
        return {**info, RENDER_STATE_KEY: frame_of(self.env)} if self.record else info

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        if self.frames is None:
            self._decide()
        return obs, self._with_state(info)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._with_state(info)
