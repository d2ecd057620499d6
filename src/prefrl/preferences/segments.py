"""Cutting rollouts into segments: S consecutive real steps of one episode, never across a boundary."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from prefrl.datatypes import Rollout, Segment
from prefrl.envs.atari import is_atari

SEGMENT_SECONDS = 1.5
"""Simulated time per segment by default (Christiano et al. 2017: 1.5 s clips)."""
ATARI_SEGMENT_LENGTH = 25
"""Steps per Atari segment (Christiano et al. 2017: 25 steps, ~1.7 s at 15 steps/s)."""


def default_segment_length(env_id: str, seconds: float = SEGMENT_SECONDS) -> int:
    """Steps in ``seconds`` of simulated time (the env's ``dt``, else its render fps), capped to fit
    the episode; 25 when the env says neither, and for Atari (the paper's: 25 steps of 4 frames)."""
    if is_atari(env_id):
        return ATARI_SEGMENT_LENGTH
    env = gym.make(env_id)
    try:
        dt = getattr(env.unwrapped, "dt", None) or getattr(env.unwrapped, "tau", None)
        fps = env.metadata.get("render_fps")
        steps = round(seconds / dt) if dt else round(seconds * fps) if fps else 25
        max_steps = env.spec.max_episode_steps if env.spec else None
    finally:
        env.close()
    if max_steps:
        steps = min(steps, max(2, max_steps // 2))
    return max(2, int(steps))


def episode_runs(valid: np.ndarray, done: np.ndarray) -> list[tuple[int, int]]:
    """(T,) masks of one env -> [start, end) runs of consecutive real steps of a single episode."""
    runs, start = [], None
    for t in range(len(valid)):
        if valid[t] and start is None:
            start = t
        if start is not None and (not valid[t] or done[t]):
            runs.append((start, t + 1 if valid[t] else t))
            start = None
    if start is not None:
        runs.append((start, len(valid)))
    return runs


def cut_segments(
    rollout: Rollout,
    length: int,
    rng: np.random.Generator,
    absorbing: bool = True,
    clips_from_obs: bool = False,
) -> list[Segment]:
    """Non-overlapping segments of ``length`` steps from every episode run of the rollout, at a
    random offset within each run. With ``absorbing``, a run that ends in termination continues in
    the absorbing state after it (``Segment.num_real``), so a short episode (a pole that falls) gives
    a segment too and the reward model can learn what ending costs; otherwise runs shorter than
    ``length`` give none. With ``clips_from_obs`` (stacked frames, Atari), each step's newest frame
    is the clip a person sees (its render state, as RGB)."""
    valid = rollout.valid.cpu().numpy()
    done = (rollout.terminated | rollout.truncated).cpu().numpy()
    terminated = rollout.terminated.cpu().numpy()
    obs = rollout.raw_obs.cpu().numpy()
    actions = rollout.env_actions.cpu().numpy()
    rewards = rollout.true_rewards.cpu().numpy()
    states = None if rollout.render_states is None else rollout.render_states.cpu().numpy()
    if states is None and clips_from_obs:
        states = np.repeat(obs[:, :, -1, :, :, None], 3, axis=-1)  # (B, T, H, W, 3) grey as RGB
    segments = []
    for b in range(valid.shape[0]):
        for start, end in episode_runs(valid[b], done[b]):
            padded = end - start + (length - 1 if absorbing and terminated[b, end - 1] else 0)
            count = padded // length
            if count == 0:
                continue
            offset = start + int(rng.integers(0, padded - count * length + 1))
            for k in range(count):
                first = offset + k * length
                state = None if states is None else states[b]
                segments.append(_segment(obs[b], actions[b], rewards[b], state, first, end, length))
    return segments


def _segment(
    obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, states: np.ndarray | None,
    first: int, end: int, length: int,
) -> Segment:  # fmt: skip
    """Steps [first, first + length) of one env's (T, ...) arrays; steps from ``end`` on (after the
    episode terminated) are the absorbing state: the last real obs and state held, zero actions
    and rewards."""
    real = min(length, end - first)
    s = slice(first, first + real)
    state = None if states is None else _hold(states[s], length)
    if real == length:
        return Segment(obs[s], actions[s], rewards[s], state)
    zero_actions = np.zeros((length - real, *actions.shape[1:]), actions.dtype)
    return Segment(
        _hold(obs[s], length),
        np.concatenate([actions[s], zero_actions]),
        np.concatenate([rewards[s], np.zeros(length - real, rewards.dtype)]),
        state,
        num_real=real,
    )


def _hold(x: np.ndarray, length: int) -> np.ndarray:
    """(R, ...) -> (length, ...), the last row repeated."""
    return np.concatenate([x, np.repeat(x[-1:], length - len(x), axis=0)]) if len(x) < length else x
