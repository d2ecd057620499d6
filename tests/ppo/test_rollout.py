"""gymnasium 1.x autoresets on the step after an episode ends: no transition and no advantage may
cross an episode boundary."""

import dataclasses

import numpy as np
import torch

from prefrl.envs.normalize import RewardScaler
from prefrl.ppo.gae import gae
from prefrl.ppo.trainer import make_batch


def test_transitions_stay_inside_episodes(collect_counter):
    rollout, _ = collect_counter()
    obs, valid = rollout.obs.numpy(), rollout.valid.numpy()
    done = (rollout.terminated | rollout.truncated).numpy()
    assert rollout.truncated.any() and rollout.terminated.any()
    B, T = valid.shape
    for b in range(B):
        assert valid[b, 0]
        for t in range(1, T):
            assert valid[b, t] == (not done[b, t - 1])  # exactly the autoreset steps are invalid
        for t in range(T - 1):
            if not valid[b, t]:
                continue
            if not done[b, t]:  # a real transition: same episode, one step on
                assert obs[b, t + 1, 0] == obs[b, t, 0] and obs[b, t + 1, 1] == obs[b, t, 1] + 1
            else:  # the next slot holds the final observation of the same episode, then a new one
                assert obs[b, t + 1, 0] == obs[b, t, 0]
                if t + 2 < T:
                    assert obs[b, t + 2, 0] == obs[b, t, 0] + 1 and obs[b, t + 2, 1] == 0


def test_advantages_do_not_cross_episode_boundaries(collect_counter):
    rollout, _ = collect_counter()
    zeros = torch.zeros_like(rollout.values)
    rollout = dataclasses.replace(rollout, values=zeros, last_values=zeros[:, 0])
    adv, _ = gae(
        rollout.rewards,
        rollout.values,
        rollout.next_values,
        rollout.terminated,
        rollout.truncated,
        gamma=1.0,
        gae_lambda=1.0,
        valid=rollout.valid,
    )
    obs, valid, rewards = rollout.obs.numpy(), rollout.valid.numpy(), rollout.rewards.numpy()
    B, T = valid.shape
    for b in range(B):
        for t in range(T):
            same = [k for k in range(t, T) if valid[b, k] and obs[b, k, 0] == obs[b, t, 0]]
            expected = rewards[b, same].sum() if valid[b, t] else 0.0
            assert adv[b, t].item() == expected, (b, t)
    assert len(make_batch(rollout, 1.0, 1.0)) == int(valid.sum())


def test_finished_episodes_report_their_true_return_and_length(collect_counter):
    rollout, stats = collect_counter(num_steps=30)
    done = (rollout.terminated | rollout.truncated).numpy()
    obs = rollout.obs.numpy()
    expected = []  # (length, return) in the order episodes end: by step, then env
    for t in range(done.shape[1] - 1):
        for b in range(done.shape[0]):
            if done[b, t]:
                episode, length = obs[b, t + 1, 0], obs[b, t + 1, 1]  # the final observation
                expected.append((int(length), float((episode + 1) * length)))
    assert len(expected) >= 5
    assert list(zip(stats.lengths, stats.returns, strict=True))[: len(expected)] == expected


def test_a_reward_fn_pays_the_agent_in_one_call_per_rollout(collect_counter):
    calls = []

    def reward_fn(raw_obs, env_actions, env_rewards, terminated):
        calls.append(raw_obs.shape)
        return 10.0 * raw_obs[:, 1] + env_actions - env_rewards  # any function of the step

    rollout, _ = collect_counter(num_envs=3, num_steps=40, reward_fn=reward_fn)
    assert calls == [(3 * 40, 2)]
    expected = 10.0 * rollout.raw_obs[..., 1] + rollout.env_actions - rollout.true_rewards
    torch.testing.assert_close(rollout.rewards, expected.float())


def test_rewards_are_scaled_in_time_order_like_step_by_step(collect_counter):
    """Scaling after the rollout gives what scaling at each step gave: same running statistics."""
    scaler = RewardScaler(3, 0.9, True)
    rollout, _ = collect_counter(num_envs=3, num_steps=40, reward_scaler=scaler)
    reference = RewardScaler(3, 0.9, True)
    done = rollout.terminated | rollout.truncated
    for t in range(40):
        step = reference(
            rollout.true_rewards[:, t].double().numpy(), done[:, t].numpy(), rollout.valid[:, t].numpy()
        )
        np.testing.assert_allclose(rollout.rewards[:, t].numpy(), step, rtol=1e-6)
    np.testing.assert_allclose(scaler.rms.var, reference.rms.var)


def test_a_gsde_policys_noise_is_drawn_at_each_rollouts_start_and_every_sde_sample_freq_steps():
    import gymnasium as gym

    from prefrl.envs.normalize import ObsNormalizer
    from prefrl.ppo.policy import ActorCritic
    from prefrl.ppo.rollout import RolloutCollector

    envs = gym.vector.SyncVectorEnv([lambda: gym.make("Pendulum-v1")] * 2)
    draws = []

    class Counting(ActorCritic):
        def reset_noise(self, num_envs, generator=None):
            draws.append(num_envs)
            super().reset_noise(num_envs, generator)

    policy = Counting(envs.single_observation_space, envs.single_action_space, sde=True)
    generator = torch.Generator().manual_seed(0)
    for freq, expected in ((4, [2, 2, 2]), (-1, [2])):
        draws.clear()
        collector = RolloutCollector(
            envs, ObsNormalizer((3,), False), RewardScaler(2, 0.9, False), 0, torch.device("cpu"),
            sde_sample_freq=freq,
        )  # fmt: skip
        rollout, _ = collector.collect(policy, 10, generator)  # steps 0, 4, 8 draw with freq 4
        assert draws == expected, (freq, draws)
        mean = policy.sample(rollout.obs.reshape(20, 3), deterministic=True).reshape(2, 10, 1)
        assert (rollout.actions - mean).abs().min() > 0  # every action explored
