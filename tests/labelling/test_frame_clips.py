"""Clips for an env with no simulator state to set (a user's own env that only renders frames):
its frames are recorded with the segments people may be asked about, and the clip is made from them."""

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from prefrl.envs.make import make_vec_env
from prefrl.labelling.render import ClipRenderer
from prefrl.preferences.labellers import HumanLabeller, HumanLabellingConfig
from prefrl.preferences.store import PreferenceStore
from prefrl.rlhp import RLHPConfig, RLHPTrainer

MODULE = '''
import gymnasium as gym
import numpy as np


class Dot(gym.Env):
    """A dot that the action pushes left or right; drawn, with no `state` attribute to set."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.x = 0.0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.5, 0.5))
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + (0.1 if action == 1 else -0.1), -1, 1))
        return np.array([self.x], np.float32), self.x, False, False, {}

    renders = 0

    def render(self):
        Dot.renders += 1
        frame = np.zeros((90, 320, 3), np.uint8)
        col = int((self.x + 1) / 2 * 300)
        frame[35:55, col : col + 20] = (255, 200, 0)
        return frame


gym.register("Dot-v0", entry_point=Dot, max_episode_steps=40)
'''


@pytest.fixture
def dot_env(tmp_path, monkeypatch):
    (tmp_path / "dot_env_module.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "dot_env_module:Dot-v0"
    sys.modules.pop("dot_env_module", None)


def test_people_get_clips_of_an_env_that_only_renders_frames(dot_env, tmp_path):
    from prefrl.ppo.config import PPOConfig

    ppo = PPOConfig(env_id=dot_env, num_envs=2, num_steps=64, total_timesteps=512, num_eval_episodes=0)
    config = RLHPConfig(ppo=ppo, num_labels=8, segment_length=20, human=HumanLabellingConfig(queue_size=2))
    envs = make_vec_env(dot_env, 2, render_states=True)
    store = PreferenceStore(tmp_path / "p.sqlite", env_id=dot_env)
    trainer = RLHPTrainer(config, HumanLabeller(config.human), store, envs)
    trainer.train_iteration()
    first = store.pending_queries()[0][1]
    segment = store.segments([first])[0]
    frames = segment.render_state
    assert frames.dtype == np.uint8 and frames.shape == (20, 45, 160, 3)  # subsampled to 160 wide
    renderer = ClipRenderer(dot_env, tmp_path / "clips", workers=1, executor=ThreadPoolExecutor(1))
    path = renderer.request(first, frames).result(60)
    renderer.close()
    assert path.read_bytes()[4:8] == b"ftyp" and path.stat().st_size > 500
    # the queue is full (nobody answered): the next rollouts draw no frames at all
    import dot_env_module

    before, pool = dot_env_module.Dot.renders, len(trainer.pool)
    trainer.train_iteration()
    assert dot_env_module.Dot.renders == before and len(trainer.pool) == pool
    from prefrl.preferences.queue import LabelQueue

    queue = LabelQueue(store)
    queue.add_labeller("person")
    person = queue.labellers()[0]
    for _ in range(2):  # people answer: room in the queue, so the next rollout draws its frames
        queue.answer(queue.lease(person).query_id, person, "left")
    trainer.train_iteration()
    assert dot_env_module.Dot.renders > before and len(trainer.pool) > pool
    newest = trainer.pool.segments[-1].render_state
    assert newest.dtype == np.uint8 and all(frame.any() for frame in newest)  # no black frames
    envs.close()
    store.close()
