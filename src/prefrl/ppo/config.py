"""PPO hyperparameters: one frozen dataclass, each field documented once (tyro turns it into flags)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import tyro

from prefrl.envs.make import Vectorization
from prefrl.envs.proxy import ProxyName
from prefrl.ppo.policy import Activation
from prefrl.validation import (
    require,
    require_positive,
    require_unit_interval,
    validation_enabled,
)


@dataclass(frozen=True)
class PPOConfig:
    env_id: str = "CartPole-v1"
    """Gymnasium env id (any registered id with a flat Box observation and Discrete/Box actions)."""
    total_timesteps: int = 100_000
    """Env steps to train for, summed over the vector envs."""
    num_envs: int = 8
    """Parallel env copies."""
    num_steps: int = 128
    """Steps per env per rollout; a rollout holds num_envs * num_steps transitions."""
    learning_rate: float = 2.5e-4
    """Adam learning rate (start value when annealed)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over training."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda (1 = Monte-Carlo, 0 = TD(0))."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide num_envs * num_steps."""
    update_epochs: int = 4
    """Passes over each rollout."""
    norm_adv: bool = True
    """Whiten advantages per minibatch."""
    clip_coef: float = 0.2
    """PPO ratio clip epsilon."""
    clip_vloss: bool = False
    """Clip the value loss around the old values with clip_coef (CleanRL's default; off as in SB3:
    it stalled the critic on Pendulum-v1 and cost return on Hopper-v5, benchmarks/RESULTS.md)."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float | None = None
    """Stop the epochs of an update early once approx-KL exceeds this (None: never)."""
    normalize_obs: bool = False
    """Normalise observations with running mean/std (saved in checkpoints)."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return."""
    clip_reward: bool = False
    """Learn from sign(env reward) (Atari, as the DQN and PPO papers); returns are logged unclipped,
    and a learned reward is never clipped."""
    terminal_on_life_loss: bool = False
    """Atari: a step that loses a life ends the value bootstrap (info["lives"] falls), the game goes
    on; training only (evaluation and logged returns are whole games)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the actor and of the critic."""
    activation: Activation = "tanh"
    """Hidden activation."""
    init_log_std: float = 0.0
    """Initial log-std of Gaussian (Box) policies (with ``use_sde``: of the noise's weights)."""
    ortho_init: bool = True
    """Orthogonal initial weights (gain sqrt 2 in the hidden layers, 0.01 on the action head, 1 on
    the value head; the PPO implementation detail) or --no-ortho-init: torch's default ``nn.Linear``
    init (rl-zoo3's tuned presets for Humanoid and MountainCarContinuous turn it off)."""
    use_sde: bool = False
    """Box actions: generalized state-dependent exploration (gSDE, Raffin et al. 2022), the noise a
    linear map of the actor's last hidden features whose weights are drawn per env at the start of
    each rollout and every ``sde_sample_freq`` steps: smooth, state-dependent exploration (rl-zoo3's
    presets for Pendulum-v1 and MountainCarContinuous-v0 use it)."""
    sde_sample_freq: int = -1
    """With ``use_sde``: draw new noise weights every this many steps (-1: once per rollout)."""
    mixed_precision: bool = False
    """Pixel observations: run the convolutional trunk in bfloat16 (``torch.autocast``); the heads,
    log-probs, losses, weights and Adam stay float32. The Nature CNN's forward and backward over 256
    frames took 2.2x less time on this project's CPU (AMX-BF16; benchmarks/cnn_bf16_step.py); slower
    on CPUs without bf16 units. Off by default: its returns at scale are not measured. The
    flat-observation MLPs are too small to gain, and take no such flag."""
    no_early_termination: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False
    """MuJoCo: keep episodes running when the body is unhealthy (Christiano et al. 2017 removed early
    termination: it leaks reward information; the env's terminate_when_unhealthy=False)."""
    no_control_cost: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False
    """MuJoCo: drop the torque penalty from the reward (people cannot see torque; ctrl_cost_weight=0)."""
    proxy_reward: ProxyName | None = None
    """Pay the agent a hand-written proxy reward instead of the env's (backflip: Hopper; spin:
    Pendulum; see prefrl.envs.proxy); the env's reward is still logged as env/true_return."""
    vectorization: Vectorization = "auto"
    """auto: gymnasium's numpy-vectorised env when the id has one, else sync."""
    seed: int = 1
    """Seed of the run: networks, env resets, action sampling and minibatches."""
    device: str = "cpu"
    """Torch device for the networks and updates."""
    rollout_device: str = "auto"
    """Torch device of the policy copy that acts in the envs. auto: cpu when --device is a GPU (one
    small MLP forward per env step costs less on a CPU than a GPU kernel launch and copy; the copy
    gets the new weights after each update), else --device."""
    num_eval_episodes: int = 10
    """Deterministic evaluation episodes at the end of training (0: none)."""
    checkpoint_every: int = 10
    """Save a checkpoint every this many iterations (and at the end)."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``envs.make_env`` / ``make_vec_env`` that select the env variant."""
        kwargs: dict[str, Any] = {}
        if self.no_early_termination:
            kwargs["terminate_when_unhealthy"] = False
        if self.no_control_cost:
            kwargs["ctrl_cost_weight"] = 0.0
        if self.proxy_reward is not None:
            kwargs["proxy_reward"] = self.proxy_reward  # a wrapper, applied by envs.make
        return kwargs

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def acting_device(self) -> str:
        """``rollout_device`` with auto resolved."""
        if self.rollout_device != "auto":
            return self.rollout_device
        return "cpu" if self.device.startswith("cuda") else self.device

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // self.batch_size

    def validate(self) -> None:
        """Raise ValueError with the fix for inconsistent or out-of-range values."""
        for name in (
            "total_timesteps",
            "num_envs",
            "num_steps",
            "num_minibatches",
            "update_epochs",
        ):
            require_positive(name, getattr(self, name))
        for name in ("learning_rate", "clip_coef", "max_grad_norm", "checkpoint_every"):
            require_positive(name, getattr(self, name))
        require_unit_interval("gamma", self.gamma)
        require_unit_interval("gae_lambda", self.gae_lambda)
        require(
            self.sde_sample_freq == -1 or self.sde_sample_freq > 0,
            f"sde_sample_freq must be -1 (once per rollout) or > 0, got {self.sde_sample_freq}",
        )
        for name in ("ent_coef", "vf_coef", "num_eval_episodes"):
            value = getattr(self, name)
            require(value >= 0, f"{name} must be >= 0, got {value}: fix --{name.replace('_', '-')}")
        require(
            self.target_kl is None or self.target_kl > 0,
            f"target_kl must be > 0 or None, got {self.target_kl}: fix --target-kl",
        )
        require(
            self.batch_size % self.num_minibatches == 0,
            f"num_minibatches={self.num_minibatches} does not divide the batch "
            f"num_envs * num_steps = {self.batch_size}: pick a divisor of {self.batch_size}",
        )
        require(
            self.total_timesteps >= self.batch_size,
            f"total_timesteps={self.total_timesteps} is less than one rollout "
            f"(num_envs * num_steps = {self.batch_size}): raise --total-timesteps",
        )
        require(
            all(h > 0 for h in self.hidden_sizes),
            f"hidden_sizes must be positive, got {self.hidden_sizes}: fix --hidden-sizes",
        )
