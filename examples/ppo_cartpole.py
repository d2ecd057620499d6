"""Train PPO on CartPole-v1 from Python, evaluate it, and reload the saved agent.

python examples/ppo_cartpole.py
"""

from pathlib import Path
from tempfile import TemporaryDirectory

import gymnasium as gym

from prefrl.checkpoint import save_checkpoint
from prefrl.ppo.evaluate import load_agent
from prefrl.ppo.presets import preset_config
from prefrl.ppo.trainer import PPOTrainer

with TemporaryDirectory() as tmp:
    checkpoint = Path(tmp) / "last.pt"
    trainer = PPOTrainer(preset_config("CartPole-v1", seed=1))
    while not trainer.done:
        metrics = trainer.train_iteration()
        if trainer.iteration % 20 == 0:
            print(f"{trainer.global_step:>7} steps  return {metrics.get('env/return_window', 0):6.1f}")
    print("deterministic evaluation:", trainer.evaluate(num_episodes=5))
    save_checkpoint(checkpoint, trainer.state_dict())  # what `prefrl ppo` writes to checkpoints/last.pt

    config, agent = load_agent(checkpoint)  # the saved policy with its observation statistics
    env = gym.make(config.env_id)
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs))
        total += float(reward)
        done = terminated or truncated
    print(f"reloaded agent: return {total:.0f}")
