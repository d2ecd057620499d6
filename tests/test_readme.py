"""The README's Python snippets run as written (a run directory they name is replaced by a real one)."""

import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.cli.main import main
from prefrl.envs import LearnedReward
from prefrl.envs.learned_reward import load_reward_model

README = Path(__file__).parents[1] / "README.md"


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def rlhp_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("readme") / "rlhp"
    argv = ["rlhp", "--env-id", "Pendulum-v1", "--total-timesteps", "2048", "--num-steps", "256"]
    argv += ["--num-minibatches", "4", "--num-labels", "20", "--num-eval-episodes", "0"]
    assert main([*argv, "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_the_readme_has_snippets_that_run(rlhp_run, monkeypatch):
    snippets = python_snippets()
    assert len(snippets) >= 2
    for code in snippets:
        code = re.sub(r'run_dir = "[^"]*"', f'run_dir = "{rlhp_run}"', code)
        code = code.replace("total_timesteps=50_000", "total_timesteps=4096")  # same code, smaller
        namespace: dict = {}
        exec(compile(code, str(README), "exec"), namespace)


def test_a_runs_reward_model_loads_in_one_line(rlhp_run):
    from prefrl.checkpoint import load_checkpoint

    model = load_reward_model(rlhp_run)
    saved = load_checkpoint(rlhp_run / "checkpoints" / "last.pt")["rlhp"]["reward_model"]
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, saved[name])
    env = LearnedReward.from_run(gym.make("Pendulum-v1"), rlhp_run)
    obs, _ = env.reset(seed=0)
    action = np.array([0.5], np.float32)
    expected = model(torch.as_tensor(obs)[None], torch.as_tensor(action)[None])[0].item()
    _, reward, _, _, info = env.step(action)
    assert reward == pytest.approx(expected) and info["true_reward"] != reward


def test_a_ppo_run_has_no_reward_model(tmp_path):
    run = tmp_path / "ppo"
    argv = ["ppo", "--total-timesteps", "1024", "--num-eval-episodes", "0", "--run-dir", str(run)]
    assert main(argv) == 0
    with pytest.raises(ValueError, match="holds no reward model"):
        load_reward_model(run)


def test_termination_pays_the_absorbing_value_when_gamma_is_given():
    from prefrl.reward_model.ensemble import RewardModel, RewardModelConfig

    env = gym.make("CartPole-v1")
    model = RewardModel(env.observation_space, env.action_space, RewardModelConfig())
    with torch.no_grad():
        model.absorbing_reward.fill_(-2.0)
    paid, plain = LearnedReward(gym.make("CartPole-v1"), model, gamma=0.9), LearnedReward(env, model)
    for wrapped in (paid, plain):
        wrapped.reset(seed=0)
    while True:  # the same actions in both: the same steps
        _, r_paid, terminated, _, _ = paid.step(0)
        _, r_plain, _, _, _ = plain.step(0)
        if terminated:
            assert r_paid == pytest.approx(r_plain + float(model.absorbing_value(0.9)))
            assert float(model.absorbing_value(0.9)) == pytest.approx(-2.0 * 9)
            break
        assert r_paid == r_plain
