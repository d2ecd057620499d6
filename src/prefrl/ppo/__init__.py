"""PPO: pure math (gae, losses), the actor-critic, rollouts and the trainer."""
