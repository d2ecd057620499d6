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
