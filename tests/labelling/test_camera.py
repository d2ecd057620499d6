"""Clips follow the robot: a Hopper 6 m from where episodes start is still in the picture."""

import numpy as np
import pytest


def robot_pixels(frame: np.ndarray) -> int:
    """Pixels of the Hopper's orange-brown body."""
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return int(((r > 120) & (r - b > 60) & (g < r - 20)).sum())


@pytest.mark.parametrize("follow", [True, False])
def test_the_camera_follows_the_body(monkeypatch, follow):
    from prefrl.envs import render_state
    from prefrl.labelling.render import make_render_env, render_frames

    if not follow:  # the check can fail: without following, the robot leaves the picture
        monkeypatch.setattr(render_state, "follow_body", lambda env: None)
    env = make_render_env("Hopper-v5")
    state = np.concatenate([env.unwrapped.init_qpos, env.unwrapped.init_qvel])
    away = state.copy()
    away[0] = 6.0
    (home,), _ = render_frames(env, state[None])
    (far,), _ = render_frames(env, away[None])
    env.close()
    assert robot_pixels(home) > 300
    assert (robot_pixels(far) > 0.8 * robot_pixels(home)) == follow
