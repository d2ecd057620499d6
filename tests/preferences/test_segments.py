import dataclasses

import numpy as np
import torch

from prefrl.preferences.segments import cut_segments, default_segment_length, episode_runs


def test_episode_runs():
    valid = np.array([1, 1, 1, 0, 1, 1, 1, 1, 0, 1], bool)
    done = np.array([0, 0, 1, 0, 0, 1, 0, 1, 0, 0], bool)
    assert episode_runs(valid, done) == [(0, 3), (4, 6), (6, 8), (9, 10)]


def test_segments_stay_inside_one_episode_and_keep_true_rewards(collect_counter):
    rollout, _ = collect_counter(num_envs=3, num_steps=60)
    segments = cut_segments(rollout, length=3, rng=np.random.default_rng(0), absorbing=False)
    assert len(segments) > 10
    for seg in segments:
        episode, step = seg.obs[:, 0], seg.obs[:, 1]
        assert (episode == episode[0]).all()  # one episode
        assert (np.diff(step) == 1).all()  # consecutive steps
        assert (seg.true_rewards == episode[0] + 1).all()  # CounterEnv pays episode id + 1
        assert seg.actions.shape == (3,)


def test_a_segment_runs_past_termination_into_the_absorbing_state(collect_counter):
    """CounterEnv episodes terminate after 2-6 steps (env 1 is truncated at 4): 8-step segments fit
    no episode, yet every terminated episode gives one, padded after its last real step."""
    rollout, _ = collect_counter(num_envs=3, num_steps=60)
    assert cut_segments(rollout, length=8, rng=np.random.default_rng(0), absorbing=False) == []
    segments = cut_segments(rollout, length=8, rng=np.random.default_rng(0))
    assert len(segments) > 10
    for seg in segments:
        real = seg.num_real
        assert real is not None and 1 <= real < 8 and seg.mask.sum() == real
        episode, step = seg.obs[:real, 0], seg.obs[:real, 1]
        assert (episode == episode[0]).all() and (np.diff(step) == 1).all()
        assert (seg.obs[real:] == seg.obs[real - 1]).all()  # the last real observation, held
        assert (seg.actions[real:] == 0).all() and (seg.true_rewards[real:] == 0).all()
        assert (seg.true_rewards[:real] == episode[0] + 1).all()
        assert seg.true_return == real * (episode[0] + 1)


def test_a_truncated_episode_is_not_padded(collect_counter):
    """After a time limit the task would have gone on: no absorbing state there."""
    rollout, _ = collect_counter(num_envs=3, num_steps=60)
    only_truncated = dataclasses.replace(rollout, terminated=torch.zeros_like(rollout.terminated))
    segments = cut_segments(only_truncated, length=8, rng=np.random.default_rng(0))
    assert segments == []


def test_default_lengths_are_about_one_and_a_half_seconds():
    assert default_segment_length("Hopper-v5") == round(1.5 / 0.008)
    assert default_segment_length("CartPole-v1") == 75  # tau 0.02
    assert default_segment_length("Pendulum-v1") == 30  # dt 0.05
