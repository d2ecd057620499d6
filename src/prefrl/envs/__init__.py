"""Environments: vector-env construction, space checks, running normalisation, learned rewards."""

from prefrl.envs.learned_reward import LearnedReward
from prefrl.envs.make import check_spaces, make_env, make_vec_env
from prefrl.envs.normalize import ObsNormalizer, RewardScaler, RunningMeanStd

__all__ = [
    "LearnedReward",
    "ObsNormalizer",
    "RewardScaler",
    "RunningMeanStd",
    "check_spaces",
    "make_env",
    "make_vec_env",
]
