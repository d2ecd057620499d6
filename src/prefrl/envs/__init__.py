"""Environments: vector-env construction, space checks and running normalisation."""

from prefrl.envs.make import check_spaces, make_env, make_vec_env
from prefrl.envs.normalize import ObsNormalizer, RewardScaler, RunningMeanStd

__all__ = [
    "ObsNormalizer",
    "RewardScaler",
    "RunningMeanStd",
    "check_spaces",
    "make_env",
    "make_vec_env",
]
