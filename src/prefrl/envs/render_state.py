"""The simulator state behind each observation, reported in ``info`` so that clips of segments can be
rendered later (MuJoCo observations omit positions, so observations alone cannot be drawn)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

RENDER_STATE_KEY = "render_state"
"""The ``info`` key that :class:`RenderStateInfo` fills (a vector env stacks it to (B, K))."""


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
    observation."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, RENDER_STATE_KEY: get_render_state(self.env)}

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, RENDER_STATE_KEY: get_render_state(self.env)}
