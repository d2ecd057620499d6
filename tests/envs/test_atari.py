"""Atari through ale-py: the preprocessing (frame skip with max-pooling, grey 84x84, 4 stacked frames,
random no-ops, whole games with their true score), the training-only parts in the rollout (rewards
clipped to their sign, a lost life terminal for the bootstrap), the Nature CNN, and the CLI."""

import builtins

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.envs.atari import SingleAtariEnv, is_atari
from prefrl.envs.make import check_spaces, make_env, make_vec_env
from prefrl.envs.normalize import ObsNormalizer, RewardScaler
from prefrl.ppo.cnn import CnnActorCritic
from prefrl.ppo.policies import build_policy
from prefrl.ppo.policy import ActorCritic
from prefrl.ppo.presets import preset_config
from prefrl.ppo.rollout import RolloutCollector

pytest.importorskip("ale_py")


def test_atari_ids_are_recognised():
    assert is_atari("ALE/Pong-v5") and is_atari("mymod:ALE/Pong-v5") and not is_atari("CartPole-v1")


def test_preprocessing_gives_four_stacked_grey_84x84_frames_four_frames_apart():
    env = make_env("ALE/Breakout-v5")
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    frames = [info["episode_frame_number"]]
    previous = obs
    for _ in range(20):
        obs, _, term, trunc, info = env.step(env.action_space.sample())
        assert not (term or trunc)
        np.testing.assert_array_equal(obs[:3], previous[1:])  # stacked oldest first, shifted by one
        frames.append(info["episode_frame_number"])
        previous = obs
    assert set(np.diff(frames)) == {4}  # each step repeats the action for 4 frames
    assert previous[-1].std() > 0  # an image, not a blank frame
    env.close()


def test_resets_start_after_a_random_number_of_no_ops():
    env = make_env("ALE/Breakout-v5")
    starts = {env.reset(seed=seed)[1]["episode_frame_number"] for seed in range(6)}
    env.close()
    assert len(starts) > 1


def test_a_game_is_one_episode_with_its_true_score():
    """Lives are lost inside an episode (the env does not end on a life loss)."""
    env = make_env("ALE/Breakout-v5")
    _, info = env.reset(seed=0)
    lives = [info["lives"]]
    done = False
    while not done:
        _, _, term, trunc, info = env.step(env.action_space.sample())
        lives.append(info["lives"])
        done = term or trunc
    env.close()
    assert lives[0] == 5 and min(lives) == 0 and len(set(lives)) == 6


class FakeFrames(gym.vector.VectorEnv):
    """Two envs of uint8 frames whose rewards are [5, -3] each step and whose first env loses a life on
    step 2: what the rollout does with rewards and lives, without ale-py's randomness."""

    def __init__(self) -> None:
        self.num_envs = 2
        self.single_observation_space = gym.spaces.Box(0, 255, (4, 36, 36), np.uint8)
        self.single_action_space = gym.spaces.Discrete(3)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 2)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros((2, 4, 36, 36), np.uint8), {"lives": np.array([3, 3])}

    def step(self, actions):
        self.t += 1
        lives = np.array([3 if self.t < 2 else 2, 3])
        obs = np.full((2, 4, 36, 36), self.t, np.uint8)
        return obs, np.array([5.0, -3.0]), np.zeros(2, bool), np.zeros(2, bool), {"lives": lives}


def _collect(clip, life_loss):
    envs = FakeFrames()
    collector = RolloutCollector(
        envs, ObsNormalizer((4, 36, 36), False), RewardScaler(2, 0.99, False), seed=0,
        device=torch.device("cpu"), clip_reward=clip, terminal_on_life_loss=life_loss,
    )  # fmt: skip
    policy = build_policy(envs.single_observation_space, envs.single_action_space)
    rollout, _ = collector.collect(policy, 4, torch.Generator().manual_seed(0))
    return rollout, policy


def test_the_cnn_rollout_takes_log_probs_and_values_from_the_acting_pass():
    rollout, policy = _collect(clip=True, life_loss=False)
    with torch.no_grad():
        logprobs, _, values = policy.evaluate(rollout.obs.reshape(-1, 4, 36, 36), rollout.actions.reshape(-1))
    torch.testing.assert_close(rollout.logprobs.reshape(-1), logprobs)
    torch.testing.assert_close(rollout.values.reshape(-1), values)


def test_the_agent_learns_from_clipped_rewards_the_true_ones_are_kept():
    rollout, _ = _collect(clip=True, life_loss=False)
    assert rollout.rewards.tolist() == [[1.0] * 4, [-1.0] * 4]
    assert rollout.true_rewards.tolist() == [[5.0] * 4, [-3.0] * 4]
    assert rollout.obs.dtype == torch.uint8 and rollout.raw_obs is rollout.obs  # one copy of the frames
    assert _collect(clip=False, life_loss=False)[0].rewards.tolist() == [[5.0] * 4, [-3.0] * 4]


def test_a_lost_life_is_terminal_for_the_bootstrap_and_the_game_goes_on():
    rollout, _ = _collect(clip=True, life_loss=True)
    assert rollout.terminated.tolist() == [[False, True, False, False], [False] * 4]
    assert rollout.valid.all()  # the step after a lost life is a real step, not a reset
    assert not _collect(clip=True, life_loss=False)[0].terminated.any()


def test_frames_get_the_nature_cnn_and_flat_observations_the_mlps():
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    policy = build_policy(frames, gym.spaces.Discrete(6))
    assert isinstance(policy, CnnActorCritic)
    obs = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    actions, logprobs, values = policy.act(obs)
    assert actions.shape == logprobs.shape == values.shape == (5,)
    logprob_again, entropy, _ = policy.evaluate(obs, actions)
    torch.testing.assert_close(logprob_again, logprobs)
    assert torch.allclose(entropy, torch.full((5,), np.log(6)), atol=0.05)  # near-uniform at init
    flat = gym.spaces.Box(-1, 1, (3,), np.float32)
    assert isinstance(build_policy(flat, gym.spaces.Discrete(2)), ActorCritic)
    with pytest.raises(ValueError, match="Discrete actions"):
        build_policy(frames, gym.spaces.Box(-1, 1, (2,), np.float32))


def test_frames_pass_the_space_check_other_shapes_say_how_to_fix_them():
    check_spaces(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(2), "x")
    with pytest.raises(ValueError, match="FlattenObservation"):
        check_spaces(gym.spaces.Box(0, 1, (84, 84), np.float32), gym.spaces.Discrete(2), "x")


def test_the_atari_preset_names_its_source():
    config = preset_config("ALE/Pong-v5")
    assert config.clip_reward and config.terminal_on_life_loss and config.clip_coef == 0.1
    assert config.num_envs == 8 and config.num_steps == 128 and not config.normalize_obs


def test_an_atari_id_without_ale_py_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_ale(name, *args, **kwargs):
        if name == "ale_py":
            raise ImportError("no ale_py")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ale)
    with pytest.raises(ValueError, match=r"pip install 'prefrl\[atari\]'"):
        make_vec_env("ALE/Pong-v5", 2)


def test_single_env_is_the_vector_env_with_one_copy():
    env = SingleAtariEnv("ALE/Pong-v5")
    obs, _ = env.reset(seed=1)
    assert env.observation_space.shape == obs.shape == (4, 84, 84)
    assert env.render().shape == (84, 84, 3)
    env.close()


def test_people_see_an_atari_segment_as_its_newest_frames(tmp_path):
    from prefrl.labelling.render import frames_fps, render_clip
    from prefrl.preferences.segments import cut_segments

    rollout, _ = _collect(clip=True, life_loss=False)
    segments = cut_segments(rollout, 2, np.random.default_rng(0), clips_from_obs=True)
    assert segments and all(s.render_state.shape == (2, 36, 36, 3) for s in segments)
    for s in segments:
        np.testing.assert_array_equal(s.render_state[..., 0], s.obs[:, -1])  # grey as RGB
    assert cut_segments(rollout, 2, np.random.default_rng(0))[0].render_state is None  # only when asked
    assert frames_fps("ALE/Pong-v5") == 15.0  # a step is 4 of the game's 60 frames a second
    assert render_clip("ALE/Pong-v5", segments[0].render_state, tmp_path / "clip.mp4").stat().st_size > 0


def test_frames_the_policies_cannot_take_are_refused_before_anything_is_written(tmp_path, capsys):
    from prefrl.cli.main import main
    from prefrl.ppo.policies import check_policy_inputs

    run = tmp_path / "never"
    assert main(["ppo", "--env-id", "ALE/Pong-v5", "--normalize-obs", "--run-dir", str(run)]) != 0
    assert "drop --normalize-obs" in capsys.readouterr().err and not run.exists()
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    with pytest.raises(ValueError, match="Discrete actions only"):
        check_policy_inputs(frames, gym.spaces.Box(-1, 1, (2,), np.float32), False, "x")


def test_after_a_lost_life_the_rollout_presses_fire_for_the_agent_and_does_not_train_on_it():
    from prefrl.envs.atari import FIRE_ACTION

    envs = FakeFrames()
    envs.metadata = {**envs.metadata, FIRE_ACTION: 1}
    sent = []
    step = envs.step
    envs.step = lambda actions: (sent.append(np.array(actions)), step(actions))[1]
    collector = RolloutCollector(
        envs, ObsNormalizer((4, 36, 36), False), RewardScaler(2, 0.99, False), seed=0,
        device=torch.device("cpu"), terminal_on_life_loss=True,
    )  # fmt: skip
    policy = build_policy(envs.single_observation_space, envs.single_action_space)
    rollout, _ = collector.collect(policy, 4, torch.Generator().manual_seed(0))
    assert sent[2][0] == 1  # env 0 lost a life on step 2 (index 1): FIRE on the next
    assert rollout.valid.tolist() == [[True, True, False, True], [True] * 4]  # not the agent's step
    assert rollout.terminated[0, 1]


def test_a_game_that_waits_for_fire_goes_on_after_a_lost_life():
    env = make_env("ALE/Breakout-v5")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    done, steps = False, 0
    while not done and steps < 5000:  # a policy that never presses FIRE (NOOP, RIGHT, LEFT)
        _, _, term, trunc, info = env.step(int(rng.choice([0, 2, 3])))
        done, steps = term or trunc, steps + 1
    env.close()
    assert done and info["lives"] == 0  # without FIRE after a lost life the game would wait for ever
