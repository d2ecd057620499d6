import gymnasium as gym
import torch

from prefrl.envs import LearnedReward
from prefrl.reward_model.ensemble import RewardModel, RewardModelConfig


def test_wrapper_gives_the_reward_model_reward_and_keeps_the_true_one():
    torch.manual_seed(0)
    env = gym.make("CartPole-v1")
    model = RewardModel(env.observation_space, env.action_space, RewardModelConfig())
    wrapped = LearnedReward(env, model)
    obs, _ = wrapped.reset(seed=0)
    for _ in range(5):
        action = wrapped.action_space.sample()
        expected = model(torch.as_tensor(obs)[None], torch.tensor([action]))[0].item()
        obs, reward, _, _, info = wrapped.step(action)
        assert reward == expected and info["learned_reward"] == expected  # r_hat(s_t, a_t)
        assert info["true_reward"] == 1.0
    mixed = LearnedReward(gym.make("CartPole-v1"), model, env_coef=2.0)
    mixed.reset(seed=0)
    _, reward, _, _, info = mixed.step(0)
    assert reward == 2.0 + info["learned_reward"]


def test_wrapper_works_with_box_actions():
    env = gym.make("Pendulum-v1")
    model = RewardModel(env.observation_space, env.action_space, RewardModelConfig(num_members=2))
    wrapped = LearnedReward(env, model)
    wrapped.reset(seed=1)
    _, reward, _, _, info = wrapped.step(wrapped.action_space.sample())
    assert isinstance(reward, float) and "true_reward" in info
