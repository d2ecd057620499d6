import gymnasium as gym
import pytest

from prefrl.envs.make import make_vec_env, pick_vectorization


def test_cartpole_uses_the_numpy_vectorised_env():
    assert pick_vectorization("CartPole-v1", 4, "auto") == "vector_entry_point"
    assert pick_vectorization("Pendulum-v1", 4, "auto") == "sync"
    envs = make_vec_env("CartPole-v1", 4)
    assert envs.num_envs == 4
    envs.close()


@pytest.mark.parametrize(
    "env_id,match",
    [
        ("NoSuchEnv-v0", "unknown env id"),
        ("CartPole-v9", "unknown env id"),
        ("Blackjack-v1", "observation space"),
        ("FrozenLake-v1", "observation space"),
    ],
)
def test_bad_envs_raise_with_the_fix(env_id, match):
    with pytest.raises(ValueError, match=match):
        make_vec_env(env_id, 2)


def test_unsupported_action_space():
    gym.register("prefrl-test/MultiBinary-v0", entry_point=_MultiBinaryEnv)
    with pytest.raises(ValueError, match="action space"):
        make_vec_env("prefrl-test/MultiBinary-v0", 1)


class _MultiBinaryEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (2,))
    action_space = gym.spaces.MultiBinary(3)


def test_the_papers_mujoco_variants():
    from prefrl.ppo.presets import preset_config

    config = preset_config("Hopper-v5", no_early_termination=True, no_control_cost=True)
    envs = make_vec_env("Hopper-v5", 1, **config.env_kwargs)
    envs.reset(seed=0)
    for _ in range(300):  # a random Hopper falls within ~100 steps; without termination it goes on
        _, _, terminated, _, _ = envs.step(envs.action_space.sample())
        assert not terminated.any()
    env = envs.envs[0].unwrapped
    assert env._ctrl_cost_weight == 0.0
    envs.close()
