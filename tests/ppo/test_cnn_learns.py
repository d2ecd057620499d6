"""PPO with the Nature CNN learns from pixels: a bright bar on the left or the right of the frame
says which action pays. With a zero learning rate it stays at chance (the check can fail)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.ppo.config import PPOConfig
from prefrl.ppo.trainer import PPOTrainer


class BarSide(gym.Env):
    """(4, 36, 36) uint8 frames with a bar on one side; reward 1 for the action naming that side."""

    observation_space = gym.spaces.Box(0, 255, (4, 36, 36), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def _frame(self):
        self.side = int(self.np_random.integers(2))
        obs = np.zeros((4, 36, 36), np.uint8)
        obs[:, :, 18 * self.side : 18 * self.side + 18] = 200
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        reward = float(int(action) == self.side)
        self.t += 1
        return self._frame(), reward, False, self.t >= 16, {}


def _mean_reward(learning_rate, mixed_precision=False):
    envs = gym.vector.SyncVectorEnv([BarSide for _ in range(8)])
    config = PPOConfig(
        env_id="BarSide", num_envs=8, num_steps=32, total_timesteps=8 * 32 * 12, learning_rate=learning_rate,
        num_minibatches=4, update_epochs=4, ent_coef=0.01, num_eval_episodes=0,
        mixed_precision=mixed_precision,
    )  # fmt: skip
    trainer = PPOTrainer(config, envs=envs)
    rewards = []
    while not trainer.done:
        metrics = trainer.train_iteration()
        rewards.append(metrics["env/episode_return"] / 16)  # mean reward per step
    envs.close()
    return rewards


@pytest.mark.slow
@pytest.mark.parametrize("mixed_precision", [False, True])
def test_cnn_policy_learns_from_pixels_and_not_without_updates(mixed_precision):
    """float32, and the trunk in bfloat16 (``--mixed-precision``) alike."""
    learned = _mean_reward(2.5e-4, mixed_precision)
    frozen = _mean_reward(1e-12, mixed_precision)
    assert np.mean(learned[-3:]) > 0.9
    assert abs(np.mean(frozen[-3:]) - 0.5) < 0.1


def test_mixed_precision_runs_the_trunk_in_bfloat16_and_the_heads_in_float32():
    from prefrl.ppo.cnn import CnnActorCritic

    torch.manual_seed(0)
    plain = CnnActorCritic(BarSide.observation_space, BarSide.action_space)
    mixed = CnnActorCritic(BarSide.observation_space, BarSide.action_space, mixed_precision=True)
    mixed.load_state_dict(plain.state_dict())
    seen = []
    mixed.trunk[0][0].register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    obs = torch.randint(0, 256, (16, 4, 36, 36), dtype=torch.uint8)
    actions = torch.randint(0, 2, (16,))
    got, want = mixed.evaluate(obs, actions), plain.evaluate(obs, actions)
    assert seen == [torch.bfloat16]  # the first convolution ran in bf16
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float32
        assert torch.allclose(g, w, atol=0.02), (g - w).abs().max()  # the same network, rounded


def test_mixed_precision_is_refused_for_flat_observations():
    with pytest.raises(ValueError, match="drop --mixed-precision"):
        PPOTrainer(
            PPOConfig(env_id="CartPole-v1", num_envs=2, num_steps=8, total_timesteps=16, mixed_precision=True)
        )
