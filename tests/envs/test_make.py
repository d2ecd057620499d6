import gymnasium as gym
import pytest

from prefrl.envs.make import bare_env_id, make_env, make_vec_env, pick_vectorization


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


USER_ENV_MODULE = '''
import gymnasium as gym
import numpy as np


class Walk(gym.Env):
    """A user's env: no render_mode argument, registered when its module is imported."""

    observation_space = gym.spaces.Box(-10, 10, (2,))
    action_space = gym.spaces.Box(-1, 1, (1,))

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = 0.0, 0
        return np.array([self.x, 0.0], np.float32), {}

    def step(self, action):
        self.x += 0.1 * float(action[0])
        self.t += 1
        return np.array([self.x, self.t / 20], np.float32), self.x, False, self.t >= 20, {}


gym.register("UserWalk-v0", entry_point=Walk, max_episode_steps=20)
'''


@pytest.fixture
def user_env_dir(tmp_path, monkeypatch):
    """A module of the user's in the current directory, as `prefrl ... --env-id module:Id` meets it."""
    (tmp_path / "user_walk_envs.py").write_text(USER_ENV_MODULE)
    (tmp_path / "user_broken_envs.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    yield tmp_path
    gym.registry.pop("UserWalk-v0", None)
    for name in ("user_walk_envs", "user_broken_envs"):
        __import__("sys").modules.pop(name, None)


def test_a_users_env_by_module_and_id(user_env_dir):
    envs = make_vec_env("user_walk_envs:UserWalk-v0", 2)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 2)
    envs.close()
    env = make_env("user_walk_envs:UserWalk-v0")  # the env takes no render_mode: none is passed
    env.close()
    assert bare_env_id("user_walk_envs:UserWalk-v0") == "UserWalk-v0"


@pytest.mark.parametrize(
    "env_id,match",
    [
        ("user_broken_envs:X-v0", "env module 'user_broken_envs' failed to import .*no_such_dependency_xyz"),
        ("no_such_module_xyz:X-v0", "env module 'no_such_module_xyz' failed to import"),
        ("user_walk_envs:Other-v0", "imported but did not register 'Other-v0'"),
        ("MyOwnTask-v0", "name its module too, as module:EnvId"),
    ],
)
def test_a_users_env_that_cannot_be_made_says_why(user_env_dir, env_id, match):
    with pytest.raises(ValueError, match=match):
        make_vec_env(env_id, 1)


def test_the_cli_trains_a_users_env_and_resumes_it(user_env_dir):
    from prefrl.cli.main import main

    run = user_env_dir / "run"
    argv = ["ppo", "--env-id", "user_walk_envs:UserWalk-v0", "--total-timesteps", "2048"]
    assert main([*argv, "--num-eval-episodes", "1", "--run-dir", str(run)]) == 0
    assert (run / "checkpoints" / "last.pt").exists()
    gym.registry.pop("UserWalk-v0")  # a new process: the saved id must import its module again
    __import__("sys").modules.pop("user_walk_envs")
    assert main(["ppo", "--resume", str(run)]) == 0
