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
    masks = torch.ones(40, 5, dtype=torch.bool)
    rng = np.random.default_rng(0)
    chosen = DisagreementSelector(model, rng, oversample=10).select(obs, actions, masks, 8)
    candidates = RandomSelector(np.random.default_rng(1)).select(obs, actions, masks, 400)

    def variance(pairs):
        i, j = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
        return model.preference_disagreement(obs[i], actions[i], obs[j], actions[j])

    assert chosen.shape == (8, 2)
    assert variance(chosen).min() > variance(candidates).median()


def test_segments_past_termination_earn_the_absorbing_reward():
    model = RewardModel(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2), RewardModelConfig(inputs="obs"))
    with torch.no_grad():
        model.absorbing_reward.copy_(torch.tensor([-1.0, -2.0, -3.0]))
    obs = torch.randn(4, 5, 2)
    masks = torch.arange(5) < torch.tensor([5, 3, 1, 4])[:, None]  # (B, S) real steps
    per_step = model.net(model.features(obs, torch.zeros(4, 5)).reshape(20, 2)).reshape(3, 4, 5)
    expected = torch.where(masks, per_step, model.absorbing_reward[:, None, None]).sum(-1)
    torch.testing.assert_close(model.segment_returns(obs, torch.zeros(4, 5), masks), expected)
    assert torch.equal(model.segment_returns(obs, torch.zeros(4, 5)), per_step.sum(-1))  # no mask: all real
    members = model.per_member_segment_returns(
        obs.expand(3, 4, 5, 2), torch.zeros(3, 4, 5), masks.expand(3, 4, 5)
    )
    torch.testing.assert_close(members, expected)
    model.reward_mean.fill_(-1.0)
    model.reward_scale.fill_(2.0)  # normalised absorbing reward: mean over members of (r - (-1)) / 2 = -0.5
    torch.testing.assert_close(model.absorbing_value(0.9), torch.tensor(-0.5 * 0.9 / 0.1))
