"""Build gymnasium (vector) envs with the fastest correct vectorisation, and check their spaces."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from prefrl.datatypes import is_frames
from prefrl.envs.atari import SingleAtariEnv, is_atari, make_atari_vec, register_atari
from prefrl.envs.proxy import ProxyReward, proxy_wrapper
from prefrl.user_code import import_user_module

Vectorization = Literal["auto", "vector_entry_point", "sync", "async"]


def split_env_id(env_id: str) -> tuple[str | None, str]:
    """gymnasium's ``module:EnvId`` form -> (module, EnvId); a plain id -> (None, id)."""
    if ":" in env_id:
        module, name = env_id.split(":", 1)
        return module, name
    return None, env_id


def import_env_module(module: str) -> None:
    """Import the module that registers a user's env (as ``gymnasium.make("module:EnvId")`` does),
    with the current directory importable as under ``python -m``; a ValueError naming the module
    and its exception when it fails."""
    try:
        import_user_module(module)
    except Exception as exc:
        raise ValueError(
            f"env module {module!r} failed to import ({type(exc).__name__}: {exc}): make it importable "
            "from the current directory or install it (pip install -e .)"
        ) from None


def bare_env_id(env_id: str) -> str:
    """The registered id without its ``module:`` prefix (what presets and file names use)."""
    return split_env_id(env_id)[1]


def resolve_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``env_id`` (importing its module first for ``module:EnvId``), or a
    ValueError that names close ids."""
    module, name = split_env_id(env_id)
    if module is not None:
        import_env_module(module)
    if is_atari(env_id):
        register_atari()
    try:
        return gym.spec(name)
    except gym.error.Error as exc:
        close = difflib.get_close_matches(name, list(gym.registry.keys()), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        where = (
            f"module {module!r} imported but did not register {name!r}"
            if module is not None
            else "an env of your own: name its module too, as module:EnvId (e.g. mypkg.envs:MyTask-v0)"
        )
        raise ValueError(
            f"unknown env id {env_id!r} ({exc}): {hint}{where}; list the registered ids with "
            "`python -c 'import gymnasium; gymnasium.pprint_registry()'`"
        ) from None


def check_spaces(observation_space: gym.Space, action_space: gym.Space, env_id: str) -> None:
    """PPO here handles flat Box observations (MLP policy) or (C, H, W) uint8 frames (convolutional
    policy), and Discrete or flat Box actions; else ValueError."""
    flat = isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1
    if not (flat or is_frames(observation_space)):
        raise ValueError(
            f"{env_id} has observation space {observation_space}, which prefrl's policies do not "
            "support: use an env with a flat Box observation (wrap others with "
            "gymnasium.wrappers.FlattenObservation and register the wrapped env) or (C, H, W) uint8 "
            "frames (e.g. gymnasium.wrappers.FrameStackObservation over grey 84x84 frames)"
        )
    if isinstance(action_space, gym.spaces.Discrete):
        if int(action_space.start) != 0:
            raise ValueError(f"{env_id}: Discrete actions must start at 0, got {action_space}")
        return
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(
                f"{env_id}: Box actions need finite bounds to clip to, got {action_space}: "
                "wrap the env with gymnasium.wrappers.RescaleAction"
            )
        return
    raise ValueError(
        f"{env_id} has action space {action_space}, which prefrl's PPO does not support: "
        "use an env with Discrete or flat Box actions"
    )


@contextlib.contextmanager
def _env_options_checked(env_id: str, kwargs: dict[str, Any]) -> Iterator[None]:
    """Turn gymnasium's TypeError for an option the env does not take into a ValueError with the fix."""
    try:
        yield
    except TypeError as exc:
        if not kwargs or "argument" not in str(exc):
            raise
        flags = {
            "terminate_when_unhealthy": "--no-early-termination",
            "ctrl_cost_weight": "--no-control-cost",
        }
        named = ", ".join(flags.get(k, k) for k in kwargs)
        raise ValueError(f"{env_id} does not take {named} ({exc}): drop it for this env") from None


def make_env(
    env_id: str, render_mode: str | None = None, proxy_reward: str | None = None, **kwargs: Any
) -> gym.Env:
    """One env, its spaces checked; ``proxy_reward`` (a name in ``envs.proxy.PROXIES``) wraps it in
    that proxy reward."""
    resolve_spec(env_id)
    if render_mode is not None:  # passed only when asked: a user's env may not take the argument
        kwargs = {**kwargs, "render_mode": render_mode}
    if is_atari(env_id):
        if proxy_reward is not None:
            raise ValueError(f"proxy rewards are written for MuJoCo and classic control, not {env_id}")
        return SingleAtariEnv(env_id, **kwargs)
    with _env_options_checked(env_id, kwargs):
        env = gym.make(env_id, **kwargs)
    if proxy_reward is not None:
        try:
            env = ProxyReward(env, proxy_reward)
        except ValueError:
            env.close()
            raise
    try:
        check_spaces(env.observation_space, env.action_space, env_id)
    except ValueError:
        env.close()
        raise
    return env


def pick_vectorization(env_id: str, num_envs: int, mode: Vectorization) -> str:
    """``auto`` takes gymnasium's numpy-vectorised env when the id ships one, else sync envs.

    (Async envs pay only when one env step costs much more than a process round trip; choose them
    with ``--vectorization async``.)
    """
    if mode != "auto":
        return mode
    spec = resolve_spec(env_id)
    if spec.vector_entry_point is not None:
        return "vector_entry_point"
    return "sync"


def make_vec_env(
    env_id: str,
    num_envs: int,
    vectorization: Vectorization = "auto",
    render_states: bool = False,
    proxy_reward: str | None = None,
    **kwargs: Any,
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` with next-step autoreset, spaces checked. With
    ``render_states``, each step's info holds the simulator state (to render clips for people);
    ``proxy_reward`` wraps each copy in that proxy reward. The numpy-vectorised envs can do neither,
    so ``auto`` then picks sync envs."""
    resolve_spec(env_id)
    if is_atari(env_id):  # clips for people are its own frames (preferences.segments.cut_segments)
        if proxy_reward is not None:
            raise ValueError(f"proxy rewards are written for MuJoCo and classic control, not {env_id}")
        return make_atari_vec(env_id, num_envs, **kwargs)
    mode = pick_vectorization(env_id, num_envs, vectorization)
    if mode == "vector_entry_point" and resolve_spec(env_id).vector_entry_point is None:
        raise ValueError(f"{env_id} has no numpy-vectorised version: use --vectorization sync or async")
    wrappers: list[Any] = []
    if (render_states or proxy_reward is not None) and mode == "vector_entry_point":
        if vectorization != "auto":
            raise ValueError(
                "clips for people and proxy rewards wrap single envs: use --vectorization sync or async"
            )
        mode = "sync"
    if proxy_reward is not None:
        wrappers.append(proxy_wrapper(proxy_reward))
    if render_states:
        from prefrl.envs.render_state import RenderStateInfo, has_render_state

        probe = make_env(env_id, **kwargs)
        probe.reset(seed=0)  # classic-control envs have their state from the first reset on
        frames = not has_render_state(probe)
        if frames and "render_mode" not in kwargs:
            kwargs = {**kwargs, "render_mode": "rgb_array"}  # clips from its frames
        probe.close()
        wrappers.append(RenderStateInfo)
    with _env_options_checked(env_id, kwargs):
        envs = gym.make_vec(
            env_id, num_envs=num_envs, vectorization_mode=mode, wrappers=wrappers or None, **kwargs
        )
    if render_states:
        from prefrl.envs.render_state import CLIP_FRAMES

        envs.metadata = {**envs.metadata, CLIP_FRAMES: frames}
    autoreset = envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    try:
        check_spaces(envs.single_observation_space, envs.single_action_space, env_id)
        if autoreset != gym.vector.AutoresetMode.NEXT_STEP:
            raise ValueError(f"{env_id}: expected next-step autoreset, got {autoreset}")
    except ValueError:
        envs.close()
        raise
    return envs
