import pytest
import torch

from prefrl.lm.token_mdp import (
    advantages_and_returns,
    eos_penalty,
    per_token_kl,
    place_scores,
    response_mask,
    terminal_flags,
    token_rewards,
    whiten_rewards,
)
from prefrl.ppo.losses import policy_loss, value_loss

EOS, PAD = 2, 0


def test_mask_is_true_up_to_and_including_first_eos():
    responses = torch.tensor([[5, 6, EOS, PAD, PAD], [5, EOS, 7, EOS, PAD], [5, 6, 7, 8, 9]])
    mask, ended = response_mask(responses, EOS)
    assert mask.tolist() == [
        [True, True, True, False, False],
        [True, True, False, False, False],
        [True, True, True, True, True],
    ]
    assert ended.tolist() == [True, True, False]


def test_score_sits_on_the_eos_token_or_on_the_length_cap():
    responses = torch.tensor([[5, 6, EOS, PAD], [5, 6, 7, 8], [EOS, PAD, PAD, PAD]])
    mask, _ = response_mask(responses, EOS)
    kl = torch.zeros(3, 4)
    rewards = token_rewards(torch.tensor([1.0, 2.0, 3.0]), kl, mask, kl_coef=0.1)
    assert rewards.tolist() == [[0, 0, 1.0, 0], [0, 0, 0, 2.0], [3.0, 0, 0, 0]]
    assert terminal_flags(mask).tolist() == [
        [False, False, True, False],
        [False, False, False, True],
        [True, False, False, False],
    ]


def test_kl_penalty_hand_worked_and_zero_when_policy_is_reference():
    logp = torch.tensor([[-1.0, -2.0, -0.5]])
    ref = torch.tensor([[-1.5, -1.0, -9.0]])
    mask = torch.tensor([[True, True, False]])
    kl = per_token_kl(logp, ref, mask)
    assert kl.tolist() == [[0.5, -1.0, 0.0]]
    rewards = token_rewards(torch.tensor([2.0]), kl, mask, kl_coef=0.2)
    assert rewards.tolist()[0] == pytest.approx([-0.1, 0.2 + 2.0, 0.0])
    same = per_token_kl(logp, logp.clone(), torch.ones(1, 3, dtype=torch.bool))
    assert torch.equal(same, torch.zeros(1, 3))


def test_token_and_segment_level_rewards_fit_the_same_frame():
    dense = place_scores(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0, 1, 2]]), 3)
    assert dense.tolist() == [[1.0, 2.0, 3.0]]
    segments = place_scores(torch.tensor([[1.0, 4.0]]), torch.tensor([[1, 3]]), 4)
    assert segments.tolist() == [[0.0, 1.0, 0.0, 4.0]]
    mask = torch.tensor([[True, True, True, False]])
    rewards = token_rewards(torch.tensor([0.0]), torch.zeros(1, 4), mask, 0.1, dense_rewards=segments)
    assert rewards.tolist() == [[0.0, 1.0, 0.0, 0.0]]  # a reward past the last real token is dropped


def test_eos_penalty_replaces_the_score_of_unfinished_responses():
    scores = torch.tensor([0.5, 0.7])
    ended = torch.tensor([True, False])
    assert eos_penalty(scores, ended, -1.0).tolist() == [0.5, -1.0]
    assert torch.equal(eos_penalty(scores, ended, None), scores)


def reference_rewards(scores, logp, ref, mask, kl_coef):
    """Slow loop over each response, written from the MDP's definition."""
    B, T = mask.shape
    rewards = torch.zeros(B, T)
    for b in range(B):
        n = int(mask[b].sum())
        r = [-kl_coef * (logp[b, t] - ref[b, t]).item() for t in range(n)]
        r[n - 1] += scores[b].item()
        rewards[b, :n] = torch.tensor(r)
    return rewards


def slow_gae(rewards, values, mask, gamma, lam):
    B, T = rewards.shape
    adv = torch.zeros(B, T)
    for b in range(B):
        n = int(mask[b].sum())
        last = 0.0
        for t in reversed(range(n)):
            next_v = values[b, t + 1].item() if t + 1 < n else 0.0
            delta = rewards[b, t].item() + gamma * next_v - values[b, t].item()
            last = delta + gamma * lam * last
            adv[b, t] = last
    return adv


def test_equals_slow_reference_loop_and_feeds_the_ppo_losses():
    g = torch.Generator().manual_seed(0)
    B, T = 5, 7
    responses = torch.randint(3, 9, (B, T), generator=g)
    responses[0, 3] = EOS
    responses[1, 0] = EOS
    responses[2, 6] = EOS
    mask, _ = response_mask(responses, EOS)
    logp, ref = -torch.rand(B, T, generator=g), -torch.rand(B, T, generator=g)
    values, scores = torch.randn(B, T, generator=g), torch.randn(B, generator=g)
    rewards = token_rewards(scores, per_token_kl(logp, ref, mask), mask, kl_coef=0.05)
    expected = reference_rewards(scores, logp, ref, mask, 0.05)
    assert torch.allclose(rewards, expected, atol=1e-6)
    adv, ret = advantages_and_returns(rewards, values, mask, 0.99, 0.9, norm_adv=False)
    slow = slow_gae(rewards, values, mask, 0.99, 0.9)
    assert torch.allclose(adv, slow, atol=1e-5)
    assert torch.allclose(ret[mask], (slow + values)[mask], atol=1e-5)
    white, _ = advantages_and_returns(rewards, values, mask, 0.99, 0.9)
    assert float(white[mask].mean()) == pytest.approx(0.0, abs=1e-5)
    assert bool((white[~mask] == 0).all())
    _loss, stats = policy_loss(logp, logp, white, 0.2, mask)
    assert stats["approx_kl"].item() == pytest.approx(0.0)
    assert value_loss(values, values, ret, 0.2, mask).item() >= 0


def test_gamma_one_lambda_one_gives_return_to_go():
    mask = torch.tensor([[True, True, True, False]])
    rewards = torch.tensor([[1.0, 2.0, 3.0, 0.0]])
    adv, _ret = advantages_and_returns(rewards, torch.zeros(1, 4), mask, 1.0, 1.0, norm_adv=False)
    assert adv.tolist() == [[6.0, 5.0, 3.0, 0.0]]


def test_reward_whitening_keeps_the_mean_and_zeroes_padding():
    rewards = torch.tensor([[1.0, 3.0, 99.0]])
    mask = torch.tensor([[True, True, False]])
    out = whiten_rewards(rewards, mask)
    assert out[0, 2] == 0
    assert (out[0, 1] / out[0, 0]).item() == pytest.approx(3.0)
