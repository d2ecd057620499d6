"""Environments: vector-env construction, space checks, running normalisation, learned rewards,
proxy rewards and the Hopper backflip task (``prefrl/HopperBackflip-v0``, registered on import)."""

from prefrl.envs.backflip import BACKFLIP_ENV_ID, BackflipTask, register_backflip
from prefrl.envs.learned_reward import LearnedReward
from prefrl.envs.make import check_spaces, make_env, make_vec_env
from prefrl.envs.normalize import ObsNormalizer, RewardScaler, RunningMeanStd
from prefrl.envs.proxy import PROXIES, ProxyReward

register_backflip()

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
