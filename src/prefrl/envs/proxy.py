"""Hand-written proxy rewards as gymnasium wrappers, each with a known way to be hacked.

A proxy replaces the env's reward (or is added to it), and the env's own reward stays in
``info["true_reward"]`` next to ``info["proxy_reward"]``, so a run logs both side by side
(``env/proxy_return`` and ``env/true_return``; task metrics such as ``env/flips`` come from the task).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np

from prefrl.envs.backflip import HOPPER_OBS_DIM

ProxyName = Literal["backflip", "spin"]
ProxyFn = Callable[[np.ndarray], float]
"""Observation after the step (D,) -> proxy reward of the step."""

HOPPER_Z_VELOCITY = 6
HOPPER_ANGULAR_VELOCITIES = slice(7, 11)
"""Torso and thigh/leg/foot angular velocities in a Hopper observation."""
PENDULUM_ANGULAR_VELOCITY = 2


def backflip_proxy(obs: np.ndarray) -> float:
    """Hopper: torso height velocity plus the absolute angular velocities of the torso and the
    joints. Meant to pay a backflip (jump up, rotate); paid as well by thrashing on the ground."""
    return float(obs[HOPPER_Z_VELOCITY] + np.abs(obs[HOPPER_ANGULAR_VELOCITIES]).sum())


def spin_proxy(obs: np.ndarray) -> float:
    """Pendulum: the absolute angular velocity. Meant to pay the energy a swing-up needs; paid most
    by spinning the pendulum round and round, never balancing it upright."""
    return float(abs(obs[PENDULUM_ANGULAR_VELOCITY]))


@dataclass(frozen=True)
class Proxy:
    fn: ProxyFn
    obs_dim: int
    """Observation size of the env family it is written for (checked when wrapping)."""
    envs: str
    """Which envs it is written for, for error messages."""


PROXIES: dict[str, Proxy] = {
    "backflip": Proxy(backflip_proxy, HOPPER_OBS_DIM, "Hopper-v5 or prefrl/HopperBackflip-v0"),
    "spin": Proxy(spin_proxy, 3, "Pendulum-v1"),
}


class ProxyReward(gym.Wrapper):
    """Pays ``proxy(next obs) + env_coef * env reward``; ``info`` keeps ``true_reward`` (the env's
    own reward) and ``proxy_reward``."""

    def __init__(self, env: gym.Env, name: str, env_coef: float = 0.0) -> None:
        super().__init__(env)
        if name not in PROXIES:
            raise ValueError(f"unknown proxy reward {name!r}: pick one of {', '.join(PROXIES)}")
        proxy = PROXIES[name]
        shape = env.observation_space.shape
        if shape != (proxy.obs_dim,):
            raise ValueError(
                f"the {name!r} proxy reads observations of shape ({proxy.obs_dim},) from "
                f"{proxy.envs}, got {shape}: use it with {proxy.envs}"
            )
        self.name = name
        self.proxy_fn = proxy.fn
        self.env_coef = env_coef

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        proxy = self.proxy_fn(np.asarray(obs))
        info = {**info, "true_reward": float(reward), "proxy_reward": proxy}
        return obs, proxy + self.env_coef * float(reward), terminated, truncated, info


def proxy_wrapper(name: str) -> Callable[[gym.Env], gym.Wrapper]:
    """A function that wraps an env in the named proxy reward (for ``gym.make_vec(wrappers=...)``)."""
    if name not in PROXIES:
        raise ValueError(f"unknown proxy reward {name!r}: pick one of {', '.join(PROXIES)}")
    return lambda env: ProxyReward(env, name)
