import pytest
import torch

from prefrl.ppo.gae import gae


def reference_gae(rewards, values, next_values, terminated, truncated, gamma, lam, valid=None):
    """Slow per-element loop, written straight from the definitions."""
    B, T = rewards.shape
    adv = torch.zeros(B, T)
    for b in range(B):
        for t in range(T):
            if valid is not None and not valid[b, t]:
                continue
            total, factor = 0.0, 1.0
            for k in range(t, T):
                bootstrap = 0.0 if terminated[b, k] else next_values[b, k].item()
                delta = rewards[b, k].item() + gamma * bootstrap - values[b, k].item()
                if valid is None or valid[b, k]:
                    total += factor * delta
                if terminated[b, k] or truncated[b, k]:
                    break
                factor *= gamma * lam
            adv[b, t] = total
    return adv


def test_hand_worked_truncation_bootstraps_from_final_value():
    r = torch.tensor([[1.0, 2.0, 3.0]])
    v = torch.tensor([[1.0, 1.0, 1.0]])
    nv = torch.tensor([[1.0, 1.0, 5.0]])
    no = torch.zeros(1, 3, dtype=torch.bool)
    trunc = torch.tensor([[False, False, True]])
    adv, ret = gae(r, v, nv, no, trunc, gamma=0.9, gae_lambda=0.8)
    # delta = [0.9, 1.9, 6.5]; A2 = 6.5, A1 = 1.9 + 0.72 * 6.5, A0 = 0.9 + 0.72 * A1
    assert adv.tolist()[0] == pytest.approx([5.6376, 6.58, 6.5])
    assert ret.tolist()[0] == pytest.approx([6.6376, 7.58, 7.5])
    # the same step terminated instead: no bootstrap
    adv, _ = gae(r, v, nv, trunc, no, gamma=0.9, gae_lambda=0.8)
    assert adv.tolist()[0] == pytest.approx([3.3048, 3.34, 2.0])


def test_episode_end_stops_the_advantage_flowing_back():
    r = torch.tensor([[1.0, 100.0]])
    v = torch.zeros(1, 2)
    done = torch.tensor([[True, False]])
    no = torch.zeros(1, 2, dtype=torch.bool)
    for term, trunc in ((done, no), (no, done)):
        adv, _ = gae(r, v, torch.zeros(1, 2), term, trunc, gamma=1.0, gae_lambda=1.0)
        assert adv[0, 0].item() == pytest.approx(1.0)


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0), (0.5, 0.3)])
def test_matches_reference_loop(gamma, lam):
    g = torch.Generator().manual_seed(0)
    B, T = 4, 17
    r = torch.randn(B, T, generator=g)
    v = torch.randn(B, T, generator=g)
    nv = torch.randn(B, T, generator=g)
    term = torch.rand(B, T, generator=g) < 0.15
    trunc = (torch.rand(B, T, generator=g) < 0.1) & ~term
    valid = torch.rand(B, T, generator=g) > 0.1
    adv, ret = gae(r, v, nv, term, trunc, gamma, lam, valid=valid)
    expected = reference_gae(r, v, nv, term, trunc, gamma, lam, valid)
    torch.testing.assert_close(adv, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ret[valid], (expected + v)[valid], atol=1e-5, rtol=1e-5)
    assert (adv[~valid] == 0).all()


def test_lambda_one_is_monte_carlo_return_minus_value():
    g = torch.Generator().manual_seed(1)
    T, gamma = 12, 0.97
    r = torch.randn(1, T, generator=g)
    v = torch.randn(1, T, generator=g)
    nv = torch.cat([v[:, 1:], torch.zeros(1, 1)], 1)
    term = torch.zeros(1, T, dtype=torch.bool)
    term[0, -1] = True
    adv, ret = gae(r, v, nv, term, torch.zeros_like(term), gamma, 1.0)
    mc = torch.tensor([sum(gamma**k * r[0, t + k].item() for k in range(T - t)) for t in range(T)])
    torch.testing.assert_close(ret[0], mc, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(adv[0], mc - v[0], atol=1e-5, rtol=1e-5)


def test_lambda_zero_is_td0():
    g = torch.Generator().manual_seed(2)
    r, v, nv = (torch.randn(3, 9, generator=g) for _ in range(3))
    term = torch.rand(3, 9, generator=g) < 0.3
    trunc = torch.rand(3, 9, generator=g) < 0.3
    adv, _ = gae(r, v, nv, term, trunc, 0.9, 0.0)
    torch.testing.assert_close(adv, r + 0.9 * (~term).float() * nv - v)
