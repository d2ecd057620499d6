"""Per-task defaults of the preference loop beside PPO's preset (``prefrl.ppo.presets``): the loop's
settings that a task measured better with, each with where it was measured. Flags override them;
``rlhp_preset`` says which applied and why (in the first line of output and the run's config.json).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from prefrl.ppo.config import PPOConfig
from prefrl.rlhp.config import RLHPConfig

_OBSERVATION_ONLY = (
    "the reward model sees the observation alone (--reward-model.inputs obs; "
    "--reward-model.inputs obs_action for the paper's r(s, a)): "
)

RLHP_PRESETS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "Swimmer-v5": (
        _OBSERVATION_ONLY + "over 8 seeds at 700 labels 1.07 of PPO's median return where r(s, a) reached "
        "0.32, half its seeds stuck in the wiggle (benchmarks/RESULTS.md, Swimmer)",
        {"reward_model": {"inputs": "obs"}},
    ),
    "HalfCheetah-v5": (
        _OBSERVATION_ONLY + "over 5 seeds at 700 labels 1.03 / 1.30 of PPO's median training / evaluation "
        "return where r(s, a) reached 0.89 / 0.85 (benchmarks/RESULTS.md, the observation alone)",
        {"reward_model": {"inputs": "obs"}},
    ),
}
"""Env id -> (why, {RLHPConfig field: {its fields}}). Only where it was measured against the loop's
defaults over several seeds; the other tasks keep the defaults (r(s, a), as in the paper)."""


def rlhp_preset(ppo: PPOConfig) -> tuple[RLHPConfig, str | None]:
    """The loop's config for ``ppo``'s task: its preset over RLHPConfig's defaults (and why), or the
    defaults (None). A user's ``module:EnvId`` matches by its id."""
    bare = ppo.env_id.split(":", 1)[-1]
    config = RLHPConfig(ppo=ppo)
    if bare not in RLHP_PRESETS:
        return config, None
    why, fields = RLHP_PRESETS[bare]
    nested = {name: dataclasses.replace(getattr(config, name), **values) for name, values in fields.items()}
    return dataclasses.replace(config, **nested), f"the {bare} preference-loop preset: {why}"
