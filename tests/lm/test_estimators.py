"""The critic-free estimators against hand-worked numbers, and their properties."""

import pytest
import torch

from prefrl.lm.estimators import (
    GROUP_STD_EPS,
    estimate_advantages,
    grpo_advantages,
    k3_kl,
    reinforce_pp_advantages,
    rloo_advantages,
    sequence_rewards,
)
from prefrl.lm.ppo import LMPPOConfig
from prefrl.masked import masked_whiten


def test_rloo_subtracts_the_mean_of_the_other_responses_of_the_prompt():
    rewards = torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 4.0])
    expected = torch.tensor([1 - 2.5, 2 - 2.0, 3 - 1.5, 0 - 2.0, 0 - 2.0, 4 - 0.0])
    assert torch.allclose(rloo_advantages(rewards, 3), expected)
    assert torch.allclose(rloo_advantages(rewards, 3).view(2, 3).sum(1), torch.zeros(2))


def test_grpo_normalises_within_each_group():
    rewards = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0])
    advantages = grpo_advantages(rewards, 3)
    assert torch.allclose(advantages[:3], torch.tensor([-1.0, 0.0, 1.0]) / (1.0 + GROUP_STD_EPS))
    assert torch.equal(advantages[3:], torch.zeros(3))  # equal rewards: nothing to learn


def test_groups_must_divide_the_batch():
    with pytest.raises(AssertionError, match="groups of 4"):
        rloo_advantages(torch.zeros(6), 4)


def test_reinforce_pp_whitens_the_returns_to_go_over_real_tokens():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    returns = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 0.0]])  # gamma 1: the reward still to come
    assert torch.allclose(reinforce_pp_advantages(rewards, mask, 1.0), masked_whiten(returns, mask))
    discounted = reinforce_pp_advantages(rewards, mask, 0.5)
    assert torch.allclose(discounted, masked_whiten(torch.tensor([[0.25, 0.5, 1.0], [1.0, 2.0, 0.0]]), mask))


def test_sequence_rewards_subtract_the_kl_of_the_real_tokens():
    kl = torch.tensor([[0.5, 0.5, 9.0]])
    mask = torch.tensor([[True, True, False]])
    assert torch.allclose(sequence_rewards(torch.tensor([2.0]), kl, mask, 0.1), torch.tensor([1.9]))


def test_k3_is_zero_at_the_reference_positive_elsewhere_and_unbiased():
    logprobs = torch.log(torch.tensor([0.2, 0.5, 0.3]))
    assert torch.equal(k3_kl(logprobs, logprobs), torch.zeros(3))
    ref = torch.log(torch.tensor([0.4, 0.4, 0.2]))
    assert (k3_kl(logprobs, ref) > 0).all()
    exact = (logprobs.exp() * (logprobs - ref)).sum()  # KL(pi || ref)
    assert torch.allclose((logprobs.exp() * k3_kl(logprobs, ref)).sum(), exact, atol=1e-6)


def test_a_sequence_advantage_goes_to_every_real_token_and_needs_no_critic():
    scores = torch.tensor([1.0, 3.0])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    zeros = torch.zeros(2, 3)
    advantages, returns = estimate_advantages("rloo", scores, zeros, zeros, mask, 0.1, group_size=2)
    assert torch.equal(advantages, torch.tensor([[-2.0, -2.0, 0.0], [2.0, 2.0, 2.0]]))
    assert torch.equal(returns, zeros)


def test_ppo_is_gae_over_the_token_rewards():
    from prefrl.lm import token_mdp

    scores, kl = torch.tensor([1.0]), torch.tensor([[0.1, 0.2]])
    values, mask = torch.tensor([[0.3, 0.4]]), torch.ones(1, 2, dtype=torch.bool)
    got = estimate_advantages("ppo", scores, kl, values, mask, 0.5, 1.0, 0.9, norm_adv=False)
    rewards = token_mdp.token_rewards(scores, kl, mask, 0.5)
    want = token_mdp.advantages_and_returns(rewards, values, mask, 1.0, 0.9, False)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"estimator": "rloo", "group_size": 1}, "group_size >= 2"),
        ({"estimator": "grpo", "group_size": 3, "batch_size": 64}, "dividing batch_size 64"),
    ],
)
def test_bad_groups_are_refused_with_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LMPPOConfig(**kwargs)


def test_grpo_puts_the_kl_in_the_loss_unless_told():
    assert LMPPOConfig(estimator="grpo").kl_in_loss and not LMPPOConfig(estimator="rloo").kl_in_loss
    assert not LMPPOConfig(estimator="grpo", kl_penalty="reward").kl_in_loss
    assert LMPPOConfig(kl_penalty="loss").kl_in_loss and not LMPPOConfig(estimator="rloo").has_critic
