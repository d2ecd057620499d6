"""prefrl: reinforcement learning from human preferences, from PPO to PPO-RLHF."""

__version__ = "0.1.0"
