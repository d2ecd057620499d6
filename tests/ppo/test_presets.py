import json

import gymnasium as gym
import numpy as np
import pytest

from prefrl.cli.main import main
from prefrl.ppo.config import PPOConfig
from prefrl.ppo.presets import CONTINUOUS_DEFAULTS, PRESETS, preset_and_source, preset_config


class DiscreteWalk(gym.Env):
    """A discrete-action task with no preset (every classic-control one has one)."""

    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), float(action == 1), False, False, {}


gym.register("prefrl-test/DiscreteWalk-v0", entry_point=DiscreteWalk, max_episode_steps=10)


def test_every_preset_makes_a_valid_config_and_names_its_source():
    for env_id, (source, _) in PRESETS.items():
        assert source and preset_config(env_id).env_id == env_id
        assert preset_and_source(env_id)[1].startswith(f"the {env_id} preset: ")


@pytest.mark.parametrize(
    "env_id,expected,why",
    [
        ("Pusher-v5", CONTINUOUS_DEFAULTS, "continuous"),
        ("prefrl-test/DiscreteWalk-v0", {}, "discrete"),
    ],
)
def test_an_env_without_a_preset_gets_defaults_from_its_action_space(env_id, expected, why):
    fields, reason = preset_and_source(env_id)
    assert fields == expected and f"no preset for {env_id}; its actions are {why}" in reason
    config = preset_config(env_id, seed=3)
    for name, value in expected.items():
        assert getattr(config, name) == value
    if not expected:
        assert config == PPOConfig(env_id=env_id, seed=3)


def test_continuous_defaults_normalise_and_take_the_papers_batch_shape():
    config = preset_config("Pusher-v5")
    assert config.normalize_obs and config.normalize_reward and not config.clip_vloss
    assert (config.num_envs, config.num_steps, config.minibatch_size, config.update_epochs) == (
        1,
        2048,
        64,
        10,
    )


def test_the_run_says_which_defaults_it_chose_and_why(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["ppo", "--env-id", "Pusher-v5", "--total-timesteps", "2048", "--num-eval-episodes", "0"]
    assert main([*argv, "--run-dir", str(run)]) == 0
    err = capsys.readouterr().err
    assert "defaults: no preset for Pusher-v5; its actions are continuous" in err
    saved = json.loads((run / "config.json").read_text())
    assert saved["defaults"].startswith("no preset for Pusher-v5")
    assert saved["config"]["normalize_obs"] is True  # the chosen defaults are the run's config


@pytest.mark.parametrize("env_id", ["LunarLander-v3", "BipedalWalker-v3"])
def test_box2d_envs_work_after_the_set_up(env_id, tmp_path):
    run = tmp_path / "run"
    argv = ["ppo", "--env-id", env_id, "--num-envs", "2", "--num-steps", "64", "--num-minibatches", "2"]
    assert main([*argv, "--total-timesteps", "128", "--num-eval-episodes", "0", "--run-dir", str(run)]) == 0


def test_swimmer_and_halfcheetah_get_their_measured_preference_loop_presets_and_flags_override_them():
    from prefrl.cli.main import RLHPCommand, parse_training
    from prefrl.rlhp.presets import rlhp_preset

    def inputs(*flags: str) -> str:
        return parse_training(list(flags), RLHPCommand, "rlhp", "prefrl rlhp").config.reward_model.inputs

    assert inputs("--env-id", "Swimmer-v5") == "obs"  # measured: r(s, a) leaves half the seeds stuck
    assert inputs("--env-id", "HalfCheetah-v5") == "obs"
    assert inputs("--env-id", "Swimmer-v5", "--reward-model.inputs", "obs_action") == "obs_action"
    assert inputs("--env-id", "Hopper-v5") == inputs("--env-id", "Pendulum-v1") == "obs_action"
    assert parse_training(["--env-id", "Swimmer-v5"], RLHPCommand, "rlhp", "x").config.ppo.gamma == 0.9999
    _, why = rlhp_preset(preset_config("Swimmer-v5"))
    assert why is not None and why.startswith("the Swimmer-v5 preference-loop preset") and "RESULTS" in why
    assert rlhp_preset(preset_config("Hopper-v5"))[1] is None


def test_the_demo_task_stops_an_update_at_a_kl_of_005():
    """The fix that kept every one of 10 seeds of the demo's task from falling late (the preference
    loop's worst seed 0.90 / 0.88 of PPO's median against 0.51 / 0.67 without it; benchmarks/RESULTS.md,
    "with today's packages"); a 10-seed run is a benchmark, not a test, so this guards the setting."""
    config = preset_config("Pendulum-v1")
    assert config.target_kl == 0.05
    assert "KL stop" in preset_and_source("Pendulum-v1")[1]
