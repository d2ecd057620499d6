"""Atari games through ``ale-py`` (its wheel ships the ROMs), with the standard preprocessing.

The preprocessing is ALE's own vectorised C++ env (``ale_py.vector_env.AtariVectorEnv``, the
``vector_entry_point`` of every ``ALE/...-v5`` id): per env step, the action repeated for 4 frames with
the last two max-pooled, converted to grey and resized to 84 x 84, the last 4 such frames stacked
(``(4, 84, 84)`` uint8); up to 30 no-ops after each reset, FIRE after a reset (and, pressed by the
rollout or the single env, after a lost life: ``FIRE_ACTION``) in games that wait for it, sticky
actions with probability 0.25 (the v5 default, Machado et al. 2018). Episodes are whole games:
the env reports each game's true score, unclipped. The two training-only parts live in the rollout
(:class:`prefrl.ppo.rollout.RolloutCollector`), so that evaluation and the logged returns never see
them: a lost life ends the trace for the value bootstrap (``terminal_on_life_loss``, from
``info["lives"]``), and the rewards PPO learns from are clipped to their sign (``clip_reward``).

One env (evaluation, videos) is the same vector env with one copy, seen as a plain ``gym.Env``, so
that training and evaluation share one preprocessing.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

ATARI_PREFIX = "ALE/"
VECTOR_KWARGS: dict[str, Any] = {
    "frameskip": 4,
    "maxpool": True,
    "img_height": 84,
    "img_width": 84,
    "grayscale": True,
    "stack_num": 4,
    "noop_max": 30,
    "use_fire_reset": True,
    "episodic_life": False,  # whole games; the life-loss terminal is the rollout's (training only)
    "life_loss_info": False,
    "reward_clipping": False,  # the true score; PPO clips what it learns from (clip_reward)
}
"""What ``AtariVectorEnv`` is built with (its own defaults clip rewards and differ in episodes)."""
INSTALL = "pip install 'prefrl[atari]' (or: pip install ale-py; `make install` does it)"
FIRE_ACTION = "prefrl_fire_action"
"""Vector-env metadata: the FIRE action of a game that has one (None otherwise). After a lost life
such games wait for FIRE to go on; the rollout presses it for the agent, as SB3's and CleanRL's
FireResetEnv do after every (life-loss) reset, and the single env does the same."""


def fire_action(env_id: str) -> int | None:
    """The index of FIRE in the game's (minimal) action set, or None."""
    register_atari()
    env = gym.make(env_id.split(":", 1)[-1])
    try:
        meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
    finally:
        env.close()
    return meanings.index("FIRE") if "FIRE" in meanings else None


def is_atari(env_id: str) -> bool:
    """An ``ALE/Game-v5`` id (``module:`` prefixes aside)."""
    return env_id.split(":", 1)[-1].startswith(ATARI_PREFIX)


def register_atari() -> None:
    """Register the ``ALE/`` ids with gymnasium (importing ale-py), or a ValueError that says how to
    install it."""
    try:
        import ale_py
    except ImportError:
        raise ValueError(f"Atari ids need ale-py, which is not installed: {INSTALL}") from None
    gym.register_envs(ale_py)


def make_atari_vec(env_id: str, num_envs: int, **kwargs: Any) -> gym.vector.VectorEnv:
    """``num_envs`` preprocessed copies of ``env_id`` in ALE's C++ vector env (next-step autoreset)."""
    register_atari()
    unknown = set(kwargs) - {"repeat_action_probability", "full_action_space", "num_threads"}
    if unknown:
        raise ValueError(f"{env_id} does not take {', '.join(sorted(unknown))}: drop it for Atari ids")
    threads = min(num_envs, os.cpu_count() or 1)  # ALE's default (0) was 1.4x slower on 2 cores
    envs = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        **{**VECTOR_KWARGS, "num_threads": threads, **kwargs},
    )
    envs.metadata = {**envs.metadata, FIRE_ACTION: fire_action(env_id)}
    return envs


class SingleAtariEnv(gym.Env[np.ndarray, Any]):
    """The vector env with one copy, as a ``gym.Env`` (evaluation and videos use the training
    preprocessing). ``render()`` gives the last observation's newest frame, as RGB."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}  # noqa: RUF012 (gymnasium's form)

    def __init__(self, env_id: str, render_mode: str | None = None, **kwargs: Any) -> None:
        self.vec = make_atari_vec(env_id, 1, **kwargs)
        self.observation_space = self.vec.single_observation_space
        self.action_space = self.vec.single_action_space
        self.render_mode = render_mode
        self.spec = gym.spec(env_id.split(":", 1)[-1])
        self._last: np.ndarray | None = None
        self._lives: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        obs, info = self.vec.reset(seed=seed)
        self._last, self._lives = obs[0], info["lives"][0]
        return obs[0], {k: v[0] for k, v in info.items()}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        lives = self._lives
        obs, reward, term, trunc, info = self.vec.step(np.asarray([action]))
        total = float(reward[0])
        fire = self.vec.metadata.get(FIRE_ACTION)
        if fire is not None and lives is not None and info["lives"][0] < lives and not (term[0] or trunc[0]):
            obs, reward, term, trunc, info = self.vec.step(np.asarray([fire]))  # go on after a lost life
            total += float(reward[0])
        self._last, self._lives = obs[0], info["lives"][0]
        return obs[0], total, bool(term[0]), bool(trunc[0]), {k: v[0] for k, v in info.items()}

    def render(self) -> np.ndarray | None:
        if self._last is None:
            return None
        return np.repeat(self._last[-1][:, :, None], 3, axis=2)

    def close(self) -> None:
        self.vec.close()


def life_lost(lives: np.ndarray | None, previous: np.ndarray | None, valid: np.ndarray) -> np.ndarray:
    """(B,) True where a valid step lost a life (``info["lives"]`` fell); all False without lives."""
    if lives is None or previous is None:
        return np.zeros(valid.shape, dtype=bool)
    return valid & (np.asarray(lives) < previous)
