"""The Hopper backflip task (Christiano et al. 2017, section 3.2): its ``flips`` metric and the
flip-progress score, written from what the Hopper's observation shows (no hidden state).

Hopper-v5 observations (x position excluded): ``obs[0]`` torso height z, ``obs[1]`` torso angle
(the ``rooty`` hinge, unbounded: it keeps counting past +-pi), ``obs[2:5]`` thigh/leg/foot angles,
``obs[5:8]`` x, z and torso angular velocities, ``obs[8:11]`` joint angular velocities. ``rooty``
turns about +y, so a positive angle leans the torso forward (+x): a backflip drives it negative.
"""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

HOPPER_OBS_DIM = 11
HEIGHT, ANGLE = 0, 1
"""Indices of the torso height and torso angle in a Hopper observation."""
UPRIGHT_TOLERANCE = 0.5
"""Radians (about 30 degrees) from upright, and short of a whole turn, that still count as a flip."""
UPRIGHT_MIN_HEIGHT = 0.7
"""Torso height (m) above which the Hopper stands rather than lies (Hopper-v5's healthy height)."""
GROUND_HEIGHT = 0.4
"""Torso height (m) below which the Hopper is down on the ground: its rotation there (rolling,
tumbling, thrashing) earns nothing and is no part of a flip. Lying, the torso is at 0.1-0.3."""
FLIP_BONUS = 2 * math.pi
"""Flip-progress score of a completed, upright backflip on top of its rotation (one turn more)."""


def wrap_angle(angle: float) -> float:
    """An angle in radians folded into [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


class FlipCounter:
    """Counts clean backflips step by step from the torso angle and height.

    The backward turn the torso makes off the ground is summed (forward turns count against it);
    it restarts from 0 whenever the torso is down near the ground. A flip completes when that sum
    reaches a whole turn (within ``UPRIGHT_TOLERANCE``) with the torso upright (angle within the
    tolerance of standing, height above ``UPRIGHT_MIN_HEIGHT``). So tumbling along the ground and
    standing up, or rocking back and forth, never counts."""

    def __init__(self, start_angle: float, start_height: float = math.inf) -> None:
        self.angle = start_angle
        self.height = start_height
        self.turn = 0.0
        """Backward turn (radians) since the torso last was near the ground or last flipped."""

    def update(self, angle: float, height: float) -> int:
        """Flips completed at this step (0, or 1 for a clean flip)."""
        if min(height, self.height) > GROUND_HEIGHT:
            self.turn += -(angle - self.angle)
        else:
            self.turn = 0.0
        self.angle, self.height = angle, height
        upright = abs(wrap_angle(angle)) < UPRIGHT_TOLERANCE and height > UPRIGHT_MIN_HEIGHT
        if upright and self.turn > 2 * math.pi - UPRIGHT_TOLERANCE:
            self.turn -= 2 * math.pi
            return 1
        return 0


def count_flips(angles: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """(T,) torso angles and heights of one episode (or segment) -> (T,) flips completed at each
    step, counted from the first step (see :class:`FlipCounter`)."""
    counter = FlipCounter(float(angles[0]), float(heights[0]))
    return np.array([counter.update(float(a), float(z)) for a, z in zip(angles, heights, strict=True)])


def airborne_rotation(angles: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """(T,) torso angles and heights -> (T,) backward turn from step t-1 to t, radians (step 0: 0;
    forward turns are negative); turns with the torso below ``GROUND_HEIGHT`` (rolling or thrashing
    on the ground) count 0."""
    angles = np.asarray(angles, dtype=np.float64)
    heights = np.asarray(heights, dtype=np.float64)
    turn = np.zeros_like(angles)
    turn[1:] = -(angles[1:] - angles[:-1]) * (np.minimum(heights[1:], heights[:-1]) > GROUND_HEIGHT)
    return turn


def flip_progress(angles: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """(T,) torso angles and heights -> (T,) flip-progress score per step: backward rotation off the
    ground plus ``FLIP_BONUS`` for each completed flip."""
    return airborne_rotation(angles, heights) + FLIP_BONUS * count_flips(angles, heights)


def segment_flip_score(obs: np.ndarray) -> float:
    """(S, D) Hopper observations of a segment -> its flip-progress score (a flip judge's number)."""
    return float(flip_progress(obs[:, ANGLE], obs[:, HEIGHT]).sum())


class BackflipTask(gym.Wrapper):
    """Hopper's reward replaced by the flip-progress score (the task's true reward); ``info`` keeps
    ``flips`` (completed this step), ``flip_progress`` and the env's own ``hopper_reward``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        shape = env.observation_space.shape
        if shape != (HOPPER_OBS_DIM,):
            raise ValueError(
                f"BackflipTask reads Hopper observations of shape ({HOPPER_OBS_DIM},), got {shape}: "
                "wrap Hopper-v5 (with its x position excluded, the default)"
            )
        self._counter = FlipCounter(0.0)
        self._last = np.zeros(2)
        """(angle, height) of the last observation."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._counter = FlipCounter(float(obs[ANGLE]), float(obs[HEIGHT]))
        self._last = np.array([obs[ANGLE], obs[HEIGHT]], dtype=np.float64)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        now = np.array([obs[ANGLE], obs[HEIGHT]], dtype=np.float64)
        turn = float(
            airborne_rotation(np.array([self._last[0], now[0]]), np.array([self._last[1], now[1]]))[1]
        )
        flips = self._counter.update(now[0], now[1])
        self._last = now
        score = turn + FLIP_BONUS * flips
        info = {**info, "flips": float(flips), "flip_progress": score, "hopper_reward": float(reward)}
        return obs, score, terminated, truncated, info


def make_hopper_backflip(**kwargs: Any) -> gym.Env:
    """``prefrl/HopperBackflip-v0``: Hopper-v5 without early termination (as the paper) whose reward
    is the flip-progress score. ``kwargs`` go to Hopper-v5 (``render_mode``, ``ctrl_cost_weight``)."""
    kwargs.setdefault("terminate_when_unhealthy", False)
    return BackflipTask(gym.make("Hopper-v5", **kwargs))


BACKFLIP_ENV_ID = "prefrl/HopperBackflip-v0"


def register_backflip() -> None:
    """Register ``prefrl/HopperBackflip-v0`` with gymnasium (idempotent)."""
    if BACKFLIP_ENV_ID not in gym.registry:
        gym.register(
            BACKFLIP_ENV_ID,
            entry_point="prefrl.envs.backflip:make_hopper_backflip",
            max_episode_steps=1000,
            disable_env_checker=True,
        )
