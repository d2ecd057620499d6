import gymnasium as gym
import numpy as np
import torch

from prefrl.preferences.query_selection import DisagreementSelector, RandomSelector, random_pairs
from prefrl.reward_model.ensemble import RewardModel, RewardModelConfig


def test_random_pairs_are_distinct_and_cover_the_segments():
    pairs = random_pairs(5, 2000, np.random.default_rng(0))
    assert pairs.shape == (2000, 2) and (pairs[:, 0] != pairs[:, 1]).all()
    assert set(pairs.ravel().tolist()) == set(range(5))


def test_disagreement_picks_the_pairs_the_members_disagree_on():
    torch.manual_seed(0)
    model = RewardModel(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2), RewardModelConfig(inputs="obs"))
    obs = torch.randn(40, 5, 2)
    actions = torch.zeros(40, 5, dtype=torch.long)
    rng = np.random.default_rng(0)
    chosen = DisagreementSelector(model, rng, oversample=10).select(obs, actions, 8)
    candidates = RandomSelector(np.random.default_rng(1)).select(obs, actions, 400)

    def variance(pairs):
        i, j = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
        return model.preference_disagreement(obs[i], actions[i], obs[j], actions[j])

    assert chosen.shape == (8, 2)
    assert variance(chosen).min() > variance(candidates).median()
