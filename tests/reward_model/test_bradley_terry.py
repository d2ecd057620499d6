import math

import pytest
import torch

from prefrl.reward_model.bradley_terry import bradley_terry_loss, preference_logprobs, segment_returns


def test_hand_worked_values():
    r1, r2 = torch.tensor([2.0]), torch.tensor([1.0])
    p = 1 / (1 + math.exp(-1))  # sigmoid(1)
    loss, stats = bradley_terry_loss(r1, r2, torch.tensor([1.0]))
    assert loss.item() == pytest.approx(-math.log(p))
    loss, _ = bradley_terry_loss(r1, r2, torch.tensor([0.0]))
    assert loss.item() == pytest.approx(-math.log(1 - p))
    loss, _ = bradley_terry_loss(r1, r2, torch.tensor([0.5]))
    assert loss.item() == pytest.approx(-0.5 * math.log(p) - 0.5 * math.log(1 - p))
    # the 10% noise model: P = 0.9 * sigmoid(1) + 0.05
    loss, _ = bradley_terry_loss(r1, r2, torch.tensor([1.0]), noise=0.1)
    assert loss.item() == pytest.approx(-math.log(0.9 * p + 0.05))
    assert stats["accuracy"].item() == 1.0


def test_noise_bounds_the_loss_of_a_confident_mistake():
    r1, r2 = torch.tensor([100.0]), torch.tensor([0.0])
    loss, _ = bradley_terry_loss(r1, r2, torch.tensor([0.0]), noise=0.1)
    assert loss.item() == pytest.approx(-math.log(0.05), rel=1e-5)
    assert torch.isfinite(bradley_terry_loss(r1, r2, torch.tensor([0.0]))[0])  # log space: no inf


def test_antisymmetry():
    g = torch.Generator().manual_seed(0)
    r1, r2 = torch.randn(3, 16, generator=g), torch.randn(3, 16, generator=g)
    labels = torch.randint(0, 3, (16,), generator=g).float() / 2
    a, _ = bradley_terry_loss(r1, r2, labels, noise=0.1)
    b, _ = bradley_terry_loss(r2, r1, 1 - labels, noise=0.1)
    assert a.item() == pytest.approx(b.item())
    lp1, lp2 = preference_logprobs(r1, r2, noise=0.1)
    torch.testing.assert_close(lp1.exp() + lp2.exp(), torch.ones_like(lp1))


def test_a_tie_pulls_both_returns_together_with_equal_and_opposite_gradients():
    r1 = torch.tensor([1.5], requires_grad=True)
    r2 = torch.tensor([-0.5], requires_grad=True)
    loss, _ = bradley_terry_loss(r1, r2, torch.tensor([0.5]), noise=0.1)
    loss.backward()
    assert r1.grad.item() == pytest.approx(-r2.grad.item())
    assert r1.grad.item() > 0  # gradient descent lowers r1 and raises r2
    equal = torch.tensor([0.3])
    assert bradley_terry_loss(equal, equal, torch.tensor([0.5]))[0].item() == pytest.approx(math.log(2))


def test_identical_members_behave_as_one_times_e():
    g = torch.Generator().manual_seed(1)
    r1, r2 = torch.randn(8, generator=g), torch.randn(8, generator=g)
    labels = torch.tensor([1.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0])
    one, s1 = bradley_terry_loss(r1, r2, labels, noise=0.1)
    many, s3 = bradley_terry_loss(r1.expand(3, 8), r2.expand(3, 8), labels, noise=0.1)
    assert many.item() == pytest.approx(3 * one.item())  # summed over members, not averaged
    assert s1["accuracy"].item() == pytest.approx(s3["accuracy"].item())


def test_margin_and_masked_segment_returns():
    rewards = torch.tensor([[1.0, 2.0, 100.0]])
    assert segment_returns(rewards, torch.tensor([[True, True, False]])).item() == 3.0
    loss, _ = bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0]), margin=1.0)
    assert loss.item() == pytest.approx(math.log(2))
