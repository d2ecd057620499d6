import math

import pytest
import torch

from prefrl.ppo.losses import explained_variance, policy_loss, value_loss


def test_policy_loss_hand_worked():
    new = torch.full((2,), math.log(1.5))
    old = torch.zeros(2)
    adv = torch.tensor([1.0, -1.0])
    loss, stats = policy_loss(new, old, adv, clip_coef=0.2)
    # A = +1: max(-1.5, -1.2) = -1.2 (clipped); A = -1: max(1.5, 1.2) = 1.5 (unclipped)
    assert loss.item() == pytest.approx(0.15)
    assert stats["clip_frac"].item() == pytest.approx(1.0)
    assert stats["approx_kl"].item() == pytest.approx(0.5 - math.log(1.5))


def test_policy_loss_is_minus_advantage_at_ratio_one():
    adv = torch.tensor([0.3, -2.0, 1.0])
    lp = torch.tensor([-1.0, -0.5, -2.0], requires_grad=True)
    loss, stats = policy_loss(lp, lp.detach(), adv, clip_coef=0.2)
    assert loss.item() == pytest.approx(-adv.mean().item())
    assert stats["approx_kl"].item() == 0 and stats["clip_frac"].item() == 0
    loss.backward()
    torch.testing.assert_close(lp.grad, -adv / 3)


def test_policy_loss_mask_ignores_padding():
    new, old = torch.tensor([0.1, 5.0]), torch.zeros(2)
    adv = torch.tensor([1.0, 100.0])
    loss, _ = policy_loss(new, old, adv, 0.2, mask=torch.tensor([True, False]))
    full, _ = policy_loss(new[:1], old[:1], adv[:1], 0.2)
    assert loss.item() == pytest.approx(full.item())


def test_value_loss_hand_worked():
    values, old, ret = torch.tensor([2.0]), torch.tensor([1.0]), torch.tensor([3.0])
    # clipped value 1.2: max((2 - 3)^2, (1.2 - 3)^2) = 3.24
    assert value_loss(values, old, ret, clip_coef=0.2).item() == pytest.approx(1.62)
    assert value_loss(values, old, ret, clip_coef=None).item() == pytest.approx(0.5)


def test_explained_variance():
    ret = torch.tensor([1.0, 2.0, 3.0])
    assert explained_variance(ret, ret) == pytest.approx(1.0)
    assert explained_variance(torch.zeros(3), ret) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(explained_variance(ret, torch.ones(3)))
