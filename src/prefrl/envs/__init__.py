"""Environments: vector-env construction, space checks, running normalisation, learned rewards,
proxy rewards and the Hopper backflip task (``prefrl/HopperBackflip-v0``, registered on import: a
registry entry, nothing of MuJoCo is loaded until the env is made). The names below are imported
when first used, so that importing ``prefrl.envs.make`` (as ``PPOConfig`` does) loads no reward model."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from prefrl.envs.backflip import register_backflip

if TYPE_CHECKING:
    from prefrl.envs.backflip import BACKFLIP_ENV_ID, BackflipTask
    from prefrl.envs.learned_reward import LearnedReward
    from prefrl.envs.make import check_spaces, make_env, make_vec_env
    from prefrl.envs.normalize import ObsNormalizer, RewardScaler, RunningMeanStd
    from prefrl.envs.proxy import PROXIES, ProxyReward

register_backflip()

_WHERE = {
    "BACKFLIP_ENV_ID": "backflip",
    "BackflipTask": "backflip",
    "LearnedReward": "learned_reward",
    "ObsNormalizer": "normalize",
    "PROXIES": "proxy",
    "ProxyReward": "proxy",
    "RewardScaler": "normalize",
    "RunningMeanStd": "normalize",
    "check_spaces": "make",
    "make_env": "make",
    "make_vec_env": "make",
}

__all__ = [
    "BACKFLIP_ENV_ID",
    "PROXIES",
    "BackflipTask",
    "LearnedReward",
    "ObsNormalizer",
    "ProxyReward",
    "RewardScaler",
    "RunningMeanStd",
    "check_spaces",
    "make_env",
    "make_vec_env",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'prefrl.envs' has no attribute {name!r}")
    return getattr(importlib.import_module(f"prefrl.envs.{_WHERE[name]}"), name)
