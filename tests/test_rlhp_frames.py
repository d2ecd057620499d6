"""Learning from preferences on frames: the convolutional reward-model ensemble (the paper's Atari
predictor) learns from synthetic comparisons of clips of frames, and PPO with the Nature CNN learns
from it. The task: a dot that the actions move left or right, paid for being in the right half of
the frame; the reward model sees only the frames. With the reward model's learning switched off the
agent stays at chance (the check can fail)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.datatypes import Segment
from prefrl.ppo.config import PPOConfig
from prefrl.preferences.labellers import SyntheticLabeller
from prefrl.preferences.store import PreferenceStore
from prefrl.reward_model.ensemble import RewardModel, RewardModelConfig
from prefrl.reward_model.nets import EnsembleCNN
from prefrl.reward_model.trainer import RewardTrainerConfig
from prefrl.rlhp import RLHPConfig, RLHPTrainer

SIZE = 48


class DotRight(gym.Env):
    """(4, 48, 48) uint8 frames (the last 4, stacked) of a dot moved 6 pixels left (action 0) or
    right (1) per step; reward 1 while it is in the right half."""

    observation_space = gym.spaces.Box(0, 255, (4, SIZE, SIZE), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def _frame(self):
        frame = np.zeros((SIZE, SIZE), np.uint8)
        frame[20:28, self.x : self.x + 6] = 255
        return frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = int(self.np_random.integers(0, SIZE - 6))
        self.frames = np.stack([self._frame()] * 4)
        return self.frames.copy(), {}

    def step(self, action):
        self.x = int(np.clip(self.x + (6 if action == 1 else -6), 0, SIZE - 6))
        self.frames = np.concatenate([self.frames[1:], self._frame()[None]])
        return self.frames.copy(), float(self.x >= SIZE // 2), False, False, {}


gym.register("prefrl-test/DotRight-v0", entry_point=DotRight, max_episode_steps=40)


def test_the_conv_ensemble_runs_its_members_apart():
    net = EnsembleCNN(3, (4, SIZE, SIZE)).eval()
    frames = torch.randint(0, 256, (5, 4, SIZE, SIZE), dtype=torch.uint8)
    shared = net(frames)
    assert shared.shape == (3, 5)
    torch.testing.assert_close(net(frames.expand(3, *frames.shape)), shared)  # per-member inputs
    with torch.no_grad():
        net.convs[0].weight[16:32] += 1.0  # member 1's first layer
    changed = net(frames)
    torch.testing.assert_close(changed[0], shared[0])
    torch.testing.assert_close(changed[2], shared[2])
    assert not torch.allclose(changed[1], shared[1])
    assert net.weight_norms().shape == (3,)
    with pytest.raises(ValueError, match="too small"):
        EnsembleCNN(3, (4, 20, 20))


def test_frames_get_the_conv_reward_model_on_the_observation_alone():
    model = RewardModel(DotRight.observation_space, DotRight.action_space, RewardModelConfig())
    assert isinstance(model.net, EnsembleCNN)
    obs = torch.randint(0, 256, (2, 6, 4, SIZE, SIZE), dtype=torch.uint8)  # (B, S, C, H, W)
    assert model.segment_returns(obs, torch.zeros(2, 6, dtype=torch.long)).shape == (3, 2)
    assert model(obs[0], torch.zeros(6, dtype=torch.long)).shape == (6,)


def test_frames_are_stored_compressed_and_come_back_the_same(tmp_path):
    env = DotRight()
    obs = [env.reset(seed=0)[0]] + [env.step(1)[0] for _ in range(24)]
    segment = Segment(np.stack(obs), np.ones(25, np.int64), np.ones(25, np.float32))
    store = PreferenceStore(tmp_path / "p.sqlite")
    (segment_id,) = store.add_segments([segment], iteration=0)
    (back,) = store.segments([segment_id])
    np.testing.assert_array_equal(back.obs, segment.obs)
    assert back.obs.dtype == np.uint8
    assert (tmp_path / "p.sqlite").stat().st_size < segment.obs.nbytes / 5


def _right_half_share(tmp_path, fit: bool) -> float:
    ppo = PPOConfig(
        env_id="prefrl-test/DotRight-v0", num_envs=8, num_steps=40, total_timesteps=8 * 40 * 12,
        num_minibatches=4, update_epochs=4, ent_coef=0.01, num_eval_episodes=0, seed=1,
    )  # fmt: skip
    fitting = RewardTrainerConfig(initial_num_epochs=30, max_steps_per_refit=8)  # a conv step costs ~0.15 s
    config = RLHPConfig(ppo=ppo, num_labels=100, segment_length=10, pool_size=300, reward_trainer=fitting)
    trainer = RLHPTrainer(
        config,
        SyntheticLabeller(config.teacher, np.random.default_rng(0)),
        PreferenceStore(tmp_path / "p.sqlite"),
    )
    if not fit:
        trainer.reward_trainer.fit = lambda *args, **kwargs: {}  # the reward model never learns
    shares = []
    while not trainer.done:
        metrics = trainer.train_iteration()
        if "env/episode_return" in metrics:
            shares.append(metrics["env/episode_return"] / 40)
    trainer.ppo.envs.close()
    print("right-half share per iteration:", np.round(shares, 2))
    return float(np.mean(shares[-3:]))


@pytest.mark.slow
def test_ppo_learns_from_preferences_on_frames(tmp_path):
    learned = _right_half_share(tmp_path / "a", fit=True)
    unfitted = _right_half_share(tmp_path / "b", fit=False)
    assert learned > 0.8
    assert unfitted < 0.7 and learned - unfitted > 0.2


def test_the_hacking_monitor_reads_predicted_returns_of_frame_segments():
    from prefrl.reward_model.monitor import predicted_returns

    model = RewardModel(DotRight.observation_space, DotRight.action_space, RewardModelConfig()).eval()
    env = DotRight()
    obs = [env.reset(seed=0)[0]] + [env.step(1)[0] for _ in range(7)]
    segments = [Segment(np.stack(obs), np.ones(8, np.int64), np.ones(8, np.float32))] * 2
    returns = predicted_returns(model, segments)
    assert returns.shape == (2,) and np.isfinite(returns).all()
