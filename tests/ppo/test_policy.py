import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.ppo.policy import ActorCritic


def box(n, low=-1.0, high=1.0):
    return gym.spaces.Box(low, high, (n,), np.float32)


def test_discrete_logprobs_match_torch_categorical():
    torch.manual_seed(0)
    policy = ActorCritic(box(4, -np.inf, np.inf), gym.spaces.Discrete(3))
    obs = torch.randn(16, 4)
    actions, logprob, value = policy.act(obs)
    assert actions.shape == (16,) and logprob.shape == (16,) and value.shape == (16,)
    logits = policy.actor(obs)
    dist = torch.distributions.Categorical(logits=logits)
    lp, ent, v = policy.evaluate(obs, actions)
    torch.testing.assert_close(lp, dist.log_prob(actions))
    torch.testing.assert_close(ent, dist.entropy())
    torch.testing.assert_close(lp, logprob)
    torch.testing.assert_close(v, value)


def test_gaussian_logprobs_match_torch_normal_and_env_actions_are_clipped():
    torch.manual_seed(0)
    policy = ActorCritic(box(5, -np.inf, np.inf), box(2, -0.5, 0.5), init_log_std=1.0)
    obs = torch.randn(64, 5)
    actions, logprob, _ = policy.act(obs)
    mean = policy.actor(obs)
    dist = torch.distributions.Normal(mean, policy.log_std.exp())
    torch.testing.assert_close(logprob, dist.log_prob(actions).sum(-1))
    lp, ent, _ = policy.evaluate(obs, actions)
    torch.testing.assert_close(lp, logprob)
    torch.testing.assert_close(ent, dist.entropy().sum(-1))
    # std e^1 makes many samples leave [-0.5, 0.5]: they stay unclipped for the log-probs ...
    assert actions.abs().max() > 0.5
    # ... and are clipped only where they enter the env
    env_actions = policy.env_actions(actions)
    assert env_actions.min() >= -0.5 and env_actions.max() <= 0.5


def test_orthogonal_init_and_deterministic_actions():
    policy = ActorCritic(box(3), gym.spaces.Discrete(2), hidden_sizes=(32, 32))
    w = policy.actor[0].weight.detach()
    torch.testing.assert_close(w.T @ w, 2.0 * torch.eye(3), atol=1e-4, rtol=1e-4)  # gain sqrt(2)
    assert policy.actor[-1].weight.abs().max() < 0.05  # gain 0.01: near-uniform initial policy
    assert (policy.actor[0].bias == 0).all()
    obs = torch.randn(8, 3)
    a1, _, _ = policy.act(obs, deterministic=True)
    torch.testing.assert_close(a1, policy.actor(obs).argmax(-1))


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_sampling_is_reproducible_with_a_generator(act):
    policy = ActorCritic(box(3), box(2), activation=act)
    obs = torch.randn(4, 3)
    a = policy.act(obs, torch.Generator().manual_seed(3))[0]
    b = policy.act(obs, torch.Generator().manual_seed(3))[0]
    torch.testing.assert_close(a, b)


def test_gumbel_max_samples_follow_the_softmax():
    from prefrl.ppo.policy import gumbel_max_sample

    logits = torch.tensor([[0.0, 1.0, -1.0, 2.0]]).expand(200_000, 4)
    samples = gumbel_max_sample(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(samples, minlength=4).float() / samples.numel()
    torch.testing.assert_close(freq, torch.softmax(logits[0], -1), atol=4e-3, rtol=0)


def test_gsde_noise_is_linear_in_the_features_held_between_draws_and_its_logprob_is_the_gaussian():
    """gSDE (Raffin et al. 2022): a = mu(s) + phi(s) W with W (F, A) drawn per env, so the action's
    std is sqrt(sum_f phi_f^2 std_fa^2); the same W gives the same action for the same state."""
    torch.manual_seed(0)
    policy = ActorCritic(box(3, -np.inf, np.inf), box(2), hidden_sizes=(8, 8), init_log_std=-0.5, sde=True)
    assert policy.log_std.shape == (8, 2)
    obs = torch.randn(4, 3).repeat(2, 1)  # envs 0-3 and 4-7 see the same states
    generator = torch.Generator().manual_seed(1)
    policy.reset_noise(8, generator)
    first = policy.sample(obs, generator)
    torch.testing.assert_close(policy.sample(obs, generator), first)  # noise held until the next draw
    assert not torch.allclose(first[:4], first[4:])  # each env its own weights
    policy.reset_noise(8, generator)
    assert not torch.allclose(policy.sample(obs, generator), first)

    features, mean = policy._forward("actor", obs[:1])
    std = (features.pow(2) @ policy.log_std.exp().pow(2) + 1e-6).sqrt()
    draws = []
    for _ in range(4000):
        policy.reset_noise(1, generator)
        draws.append(policy.sample(obs[:1], generator))
    draws = torch.cat(draws)
    torch.testing.assert_close(draws.mean(0), mean[0], atol=0.05, rtol=0)
    torch.testing.assert_close(draws.std(0), std[0], atol=0.0, rtol=0.05)
    logprob, entropy, _ = policy.evaluate(obs[:1].expand(5, 3), draws[:5])
    dist = torch.distributions.Normal(mean, std)
    torch.testing.assert_close(logprob, dist.log_prob(draws[:5]).sum(-1))
    torch.testing.assert_close(entropy, dist.entropy().sum(-1).expand(5))
    torch.testing.assert_close(policy.sample(obs[:1], deterministic=True), mean)


def test_gsde_wants_box_actions():
    from prefrl.ppo.policies import check_policy_inputs

    with pytest.raises(ValueError, match="drop --use-sde"):
        check_policy_inputs(box(3), gym.spaces.Discrete(2), False, "CartPole-v1", use_sde=True)


def test_orthogonal_init_or_torchs_default():
    """The PPO detail (orthogonal weights, zero biases, a 0.01-gain action head) by default; torch's
    nn.Linear init with --no-ortho-init (rl-zoo3's Humanoid presets), which the presets can ask for."""
    from prefrl.ppo.presets import preset_config

    torch.manual_seed(0)
    ortho = ActorCritic(box(8, -np.inf, np.inf), box(3), hidden_sizes=(16, 16))
    plain = ActorCritic(box(8, -np.inf, np.inf), box(3), hidden_sizes=(16, 16), ortho_init=False)
    first, head = ortho.actor[0], ortho.actor[-1]
    torch.testing.assert_close(first.weight.T @ first.weight, 2.0 * torch.eye(8))  # orthogonal, gain sqrt 2
    assert first.bias.abs().max() == 0 and head.weight.abs().max() < 0.02
    assert plain.actor[0].bias.abs().max() > 0 and plain.actor[-1].weight.abs().max() > 0.05
    assert not preset_config("Humanoid-v5").ortho_init and preset_config("Hopper-v5").ortho_init
