"""Any agent can train on a learned reward: fit prefrl's reward model from synthetic preferences on
Pendulum-v1, then train Stable-Baselines3's PPO on `LearnedReward(env, reward_model)`.

    pip install -c constraints.txt -e ".[bench]"   # stable-baselines3
    python examples/sb3_on_learned_reward.py
"""

import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO

from prefrl.envs import LearnedReward
from prefrl.ppo.presets import preset_config
from prefrl.preferences.labellers import SyntheticLabeller, SyntheticLabellerConfig
from prefrl.preferences.store import PreferenceStore
from prefrl.rlhp import RLHPConfig, RLHPTrainer

# 1. A reward model from 300 synthetic preferences (prefrl's loop, short run).
# SB3's PPO here does not scale its rewards, so the learned reward is normalised on the latest
# rollout's steps (the better states ~0): normalised on the first (random) rollout's, prefrl's default
# for its own agent (which scales returns), this SB3 agent ended at -1326 instead of -129 (seed 0).
config = RLHPConfig(
    ppo=preset_config("Pendulum-v1", total_timesteps=40_960), num_labels=300, reward_normalization="rollout"
)
store = PreferenceStore(Path(tempfile.mkdtemp()) / "preferences.sqlite")
loop = RLHPTrainer(config, SyntheticLabeller(SyntheticLabellerConfig(), np.random.default_rng(0)), store)
while not loop.done:
    metrics = loop.train_iteration()
print(f"reward model: accuracy {metrics['reward_model/val_accuracy']:.2f} on held-out labels")

# 2. SB3 trains on the learned reward; the env's own reward stays in info["true_reward"].
env = LearnedReward(gym.make("Pendulum-v1"), loop.reward_model)
model = PPO("MlpPolicy", env, n_steps=1024, gamma=0.9, learning_rate=1e-3, verbose=0, seed=0)
model.learn(total_timesteps=50_000)

obs, _ = env.reset(seed=0)
true_return, done = 0.0, False
while not done:
    action, _ = model.predict(obs, deterministic=True)
    obs, _, terminated, truncated, info = env.step(action)
    true_return += info["true_reward"]
    done = terminated or truncated
print(f"SB3 agent trained on the learned reward: true return {true_return:.0f} (random: about -1200)")
