"""The asynchronous loop with people: the trainer keeps a queue of queries in the store, never waits,
and refits the reward model when answers arrive; the CLI serves the app next to training."""

import re
import socket

import numpy as np

from prefrl.cli.logger import read_metrics
from prefrl.cli.main import main
from prefrl.envs.make import make_vec_env
from prefrl.ppo.presets import preset_config
from prefrl.preferences.labellers import HumanLabeller, HumanLabellingConfig
from prefrl.preferences.queue import LabelQueue
from prefrl.preferences.store import PreferenceStore
from prefrl.rlhp import RLHPConfig, RLHPTrainer


def human_trainer(tmp_path, num_labels=12, queue_size=4):
    ppo = preset_config("Pendulum-v1", num_steps=64, num_envs=4, total_timesteps=4096)
    human = HumanLabellingConfig(queue_size=queue_size, min_labels=3)
    config = RLHPConfig(ppo=ppo, num_labels=num_labels, human=human)
    envs = make_vec_env("Pendulum-v1", 4, render_states=True)
    store = PreferenceStore(tmp_path / "p.sqlite", env_id="Pendulum-v1")
    return RLHPTrainer(config, HumanLabeller(config.human), store, envs)


def answer_as_a_person(store, count):
    """A stand-in person: prefers the clip with the higher true return."""
    queue = LabelQueue(store)
    queue.add_labeller("person")
    person = queue.labellers()[0]
    for _ in range(count):
        lease = queue.lease(person)
        first, second = store.segments([lease.segment_1, lease.segment_2])
        queue.answer(lease.query_id, person, "left" if first.true_return > second.true_return else "right")


def test_the_loop_enqueues_never_waits_and_refits_when_answers_arrive(tmp_path):
    t = human_trainer(tmp_path)
    first = t.train_iteration()  # nobody has answered: RL goes on with the untrained reward model
    assert t.store.num_pending() == 4 and t.store.num_comparisons() == 0 and t.global_step == 256
    assert "reward_model/train_loss" not in first and first["preferences/num_labels"] == 0
    from prefrl.labelling.admin import training_line

    assert "paid nothing until the reward model is fitted" in training_line(LabelQueue(t.store))
    lease_segments = t.store.segments([q[1] for q in t.store.pending_queries()])
    assert all(s.render_state is not None and s.render_state.shape[1] == 2 for s in lease_segments)
    obs, actions = np.zeros((2, 3)), np.zeros((2, 1), np.float32)
    ended = np.zeros(2, bool)
    assert not t.learned_reward(obs, actions, np.ones(2), ended).any()  # paid nothing before the first fit
    answer_as_a_person(t.store, 2)
    early = t.train_iteration()
    assert early["preferences/num_labels"] == 2 and "reward_model/train_loss" in early  # fitted ...
    assert not t.learned_reward(obs, actions, np.ones(2), ended).any()  # ... but under min_labels: still zero
    answer_as_a_person(t.store, 1)
    second = t.train_iteration()
    assert second["preferences/num_labels"] == 3 and "reward_model/train_loss" in second  # refitted
    assert t.learned_reward(obs, actions, np.ones(2), ended).any()
    assert t.store.num_pending() == 4  # topped up
    third = t.train_iteration()
    assert "reward_model/train_loss" not in third  # no new answers: no refit
    answer_as_a_person(t.store, 4)
    assert t.train_iteration()["preferences/num_labels"] == 7 and t.num_asked == 11
    answer_as_a_person(t.store, 4)
    metrics = t.train_iteration()
    assert t.num_asked == t.store.num_queries() == 12  # the budget caps the queries asked
    assert metrics["preferences/num_labels"] == 11 and metrics["preferences/num_pending"] == 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rlhp_human_cli_serves_the_app_and_prints_the_url(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["rlhp", "--env-id", "Pendulum-v1", "--labeller", "human", "--human.port", "0"]
    args += ["--total-timesteps", "2048", "--num-steps", "128", "--num-labels", "20"]
    args += ["--num-eval-episodes", "1", "--run-dir", str(run_dir)]
    assert main(args) == 0
    err = " ".join(capsys.readouterr().err.split())
    served = re.search(r"label at (http://127\.0\.0\.1:\d+)/\?token=\S+", err)
    assert served
    assert "people gave 0 usable answers to 10 queries asked" in err and "never paid a learned reward" in err
    with PreferenceStore(run_dir / "preferences.sqlite") as store:
        assert store.num_pending() == 10 and store.num_comparisons() == 0
        assert LabelQueue(store).progress()["budget"] == 20
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")] == [1024, 2048]
    url = "http://example.org:9000"
    assert main(["label", "add-labeller", "alice", "--run-dir", str(run_dir), "--url", url]) == 0
    assert re.match(r"http://example\.org:9000/\?token=\S+$", capsys.readouterr().out.strip())
    assert main(["label", "add-labeller", "bob", "--run-dir", str(run_dir)]) == 0  # where it was served
    assert capsys.readouterr().out.startswith(served.group(1) + "/?token=")
    # a human run cannot be resumed with the synthetic labeller
    assert main(["rlhp", "--resume", str(run_dir), "--total-timesteps", "2048"]) == 2
    assert "resume with --labeller human" in capsys.readouterr().err


def test_label_bad_input_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "ppo").mkdir()
    (tmp_path / "ppo" / "config.json").write_text('{"kind": "ppo", "config": {}}')
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        from .conftest import make_run

        make_run(tmp_path / "run", num_queries=1)
        cases = [
            (["label", str(tmp_path / "nowhere")], "is not a prefrl run directory"),
            (["label", str(tmp_path / "ppo")], "has no preferences.sqlite"),
            (["label", str(tmp_path / "run"), "--port", str(busy.getsockname()[1])], "pass another --port"),
            (["label", "add-labeller", "bad name!", "--run-dir", str(tmp_path / "run")], "labeller name"),
            (["label", str(tmp_path / "run"), "--port", "70000"], "--port must be"),
        ]
        for argv, message in cases:
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert err.startswith("error:") and message in err and err.count("\n") == 1, err


def test_clips_of_a_real_run_render(tmp_path):
    """Segments cut from a rollout carry render states from which the app draws the clips."""
    from prefrl.labelling.render import make_render_env, render_frames

    t = human_trainer(tmp_path)
    t.train_iteration()
    (segment,) = t.store.segments([t.store.pending_queries()[0][1]])
    env = make_render_env("Pendulum-v1")
    frames, fps = render_frames(env, segment.render_state)
    env.close()
    assert len(frames) == len(segment) and fps == 20 and frames[0].shape == (500, 500, 3)
    assert not np.array_equal(frames[0], frames[-1])  # the pendulum moved


def test_mujoco_clips_render_offscreen(tmp_path):
    """Hopper segments render through EGL from qpos+qvel render states, to an H.264 mp4."""
    import gymnasium as gym

    from prefrl.envs.render_state import RENDER_STATE_KEY, RenderStateInfo
    from prefrl.labelling.render import ClipRenderer

    env = RenderStateInfo(gym.make("Hopper-v5"))
    _, info = env.reset(seed=0)
    states = [info[RENDER_STATE_KEY]]
    for _ in range(11):
        states.append(env.step(env.action_space.sample())[4][RENDER_STATE_KEY])
    env.close()
    renderer = ClipRenderer("Hopper-v5", tmp_path / "clips")
    path = renderer.request(7, np.stack(states)).result(timeout=120)
    renderer.close()
    assert path == tmp_path / "clips" / "7.mp4" and path.read_bytes()[4:8] == b"ftyp"
    import imageio.v3 as iio

    frames = iio.imread(path)
    assert frames.shape[1:] == (240, 320, 3) and len(frames) == 3  # 12 steps at 125 Hz, every 5th


def test_a_restarted_app_keeps_its_port_so_the_links_given_out_keep_working(tmp_path):
    from prefrl.labelling.server import start_background

    from .conftest import make_run

    run = make_run(tmp_path / "run", num_queries=1)
    first, _ = start_background(run["store"], "127.0.0.1", 0, lease_seconds=300, render_ahead=None)
    url = first.url
    first.stop()
    again, _ = start_background(run["store"], "127.0.0.1", 0, lease_seconds=300, render_ahead=None)
    try:
        assert again.url == url
    finally:
        again.stop()


def test_people_rate_single_clips_while_training_goes_on(tmp_path):
    ppo = preset_config("Pendulum-v1", num_steps=64, num_envs=4, total_timesteps=4096)
    human = HumanLabellingConfig(queue_size=4, min_labels=3)
    config = RLHPConfig(ppo=ppo, num_labels=12, human=human, feedback="rate")
    envs = make_vec_env("Pendulum-v1", 4, render_states=True)
    store = PreferenceStore(tmp_path / "p.sqlite", env_id="Pendulum-v1")
    t = RLHPTrainer(config, HumanLabeller(config.human), store, envs)
    t.train_iteration()
    assert [store.query_kind(q) for q, _, _ in store.pending_queries()] == ["rate"] * 4
    queue = LabelQueue(store)
    queue.add_labeller("person")
    person = queue.labellers()[0]
    for rating in (0, 2, 4):  # a stand-in person
        queue.answer(queue.lease(person).query_id, person, None, rating)
    metrics = t.train_iteration()
    assert metrics["preferences/num_labels"] == 3 and "reward_model/rating_train_loss" in metrics
    obs, actions = np.zeros((2, 3)), np.zeros((2, 1), np.float32)
    assert t.learned_reward(obs, actions, np.ones(2), np.zeros(2, bool)).any()  # paid from 3 ratings on


def test_a_task_with_no_reward_trains_from_people_and_reports_no_true_return(tmp_path, capsys):
    """An env that pays nothing: training runs on people's answers; the metrics that measure the env's
    reward (returns, evaluation, the hacking monitor) are absent rather than zero."""
    import gymnasium as gym
    from gymnasium.envs.classic_control.pendulum import PendulumEnv

    from prefrl.reward_model.monitor import TRUE_REWARD_METRICS

    class NoRewardPendulum(PendulumEnv):
        def step(self, action):
            obs, _, terminated, truncated, info = super().step(action)
            return obs, 0.0, terminated, truncated, info

    gym.register("prefrl_test/NoRewardPendulum-v0", entry_point=NoRewardPendulum, max_episode_steps=200)
    ppo = preset_config("prefrl_test/NoRewardPendulum-v0", num_steps=64, num_envs=4, total_timesteps=4096)
    config = RLHPConfig(ppo=ppo, num_labels=12, human=HumanLabellingConfig(queue_size=4, min_labels=3))
    envs = make_vec_env(ppo.env_id, 4, render_states=True)
    store = PreferenceStore(tmp_path / "p.sqlite", env_id=ppo.env_id)
    t = RLHPTrainer(config, HumanLabeller(config.human), store, envs)
    t.train_iteration()
    queue = LabelQueue(store)
    queue.add_labeller("person")
    person = queue.labellers()[0]
    for _ in range(4):  # a person who prefers the pendulum nearer the top (cos theta, obs[0])
        lease = queue.lease(person)
        first, second = store.segments([lease.segment_1, lease.segment_2])
        queue.answer(
            lease.query_id, person, "left" if first.obs[:, 0].sum() > second.obs[:, 0].sum() else "right"
        )
    metrics = t.train_iteration()
    assert metrics["preferences/num_labels"] == 4 and "reward_model/train_loss" in metrics
    assert not t.true_reward_seen and not [k for k in metrics if k.startswith(TRUE_REWARD_METRICS)]
    obs, actions = np.zeros((2, 3)), np.zeros((2, 1), np.float32)
    assert t.learned_reward(obs, actions, np.zeros(2), np.zeros(2, bool)).any()  # paid the learned reward
