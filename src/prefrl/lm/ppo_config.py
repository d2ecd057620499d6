"""The configuration of PPO-RLHF (:class:`prefrl.lm.ppo.LMPPOTrainer`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import tyro

from prefrl.lm.estimators import GROUPED, Estimator
from prefrl.lm.scores import RewardLevel
from prefrl.optim import LRSchedule
from prefrl.validation import require, require_positive, require_unit_interval, validation_enabled


@dataclass(frozen=True)
class LMPPOConfig:
    """PPO-RLHF and the critic-free estimators that share its sampling, KL and clipped update."""

    estimator: Estimator = "ppo"
    """ppo: GAE with a critic over the token MDP (InstructGPT). The critic-free ones treat a response as
    one action: rloo (leave-one-out baseline over group_size responses per prompt), grpo (advantages
    normalised within each group; KL in the loss by default), reinforce++ (returns-to-go of the
    token rewards, normalised over the batch). lm/estimators.py has the math."""
    group_size: int = 8
    """Responses sampled per prompt by rloo and grpo (batch_size must be a multiple; >= 2). 8 as TRL's
    GRPO: a group's standard deviation over few answers is noisy, and GRPO divides by it."""
    kl_penalty: Literal["reward", "loss"] | None = None
    """Where the KL to the reference goes: the reward (kl_coef x per-token KL, ppo's), or the loss
    (kl_coef x the k3 estimate per token, grpo's); None: the estimator's own (loss for grpo)."""
    reward_level: RewardLevel = "sequence"
    """What the reward function scores: the whole response (sequence), each segment (a list of
    floats, one per segment ending in ``segment_end``: a process reward) or each token. Reward models
    score sequences."""
    segment_end: str = "."
    """Text that ends a segment (reward_level segment): tokens whose text ends with it close one."""
    num_iterations: int = 60
    """PPO iterations (each samples ``batch_size`` responses, then updates)."""
    batch_size: int = 64
    """Prompts (responses) per iteration."""
    minibatch_size: int = 16
    """Responses per gradient step."""
    update_epochs: int = 4
    """Passes over each batch (Ziegler, N+: 4; InstructGPT: 1). The names of the settings the two PPOs
    share are the gymnasium PPO's (:class:`prefrl.ppo.config.PPOConfig`)."""
    learning_rate: float = 3e-4
    """Adam learning rate of policy and critic (tiny model; ~3e-6 for a pretrained one)."""
    schedule: Annotated[LRSchedule, tyro.conf.arg(name="")] = field(default_factory=LRSchedule)
    """Warmup and decay of the learning rate."""
    adam_eps: float = 1e-5
    """Adam epsilon (PyTorch places it differently from TF; 1e-5 keeps early updates moderate)."""
    max_new_tokens: int = 24
    """Response length cap (tokens, EOS included)."""
    temperature: float = 1.0
    """Sampling temperature; log-probs of policy and reference are taken at the same temperature."""
    recompute_logprobs: bool = False
    """The policy's log-probs at sampling time (the PPO ratio's denominator, the KL's policy term) are
    recomputed by one more forward over prompt + response after sampling; off (the default), those the
    sampling loop drew each token with are used: the same numbers to float rounding in fp32 (the ratio
    at an update's first step is 1 +- 1e-6), one forward of the policy fewer per iteration."""
    kl_coef: float = 0.05
    """Per-token KL penalty coefficient (initial value when ``adaptive_kl``)."""
    adaptive_kl: bool = False
    """Ziegler's controller: kl_coef *= 1 + clip(KL / kl_target - 1, -0.2, 0.2) * batch / kl_horizon."""
    kl_target: float = 6.0
    """Target KL(pi || pi_ref) per response, nats (adaptive KL only)."""
    kl_horizon: int = 10000
    """Horizon of the adaptive controller, in responses."""
    gamma: float = 1.0
    """Discount over response tokens."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_coef: float = 0.2
    """PPO ratio clip."""
    clip_vloss: bool = True
    """Clip the value loss around the rollout's values by ``clip_coef`` (as the N+ implementation
    and TRL do; the gymnasium PPO's default is off, as SB3's)."""
    vf_coef: float = 0.1
    """Weight of the critic's loss."""
    whiten_rewards: bool = False
    """Scale the per-token rewards to unit variance over each batch (no mean shift)."""
    norm_adv: bool = True
    """Whiten advantages over the real tokens of each batch."""
    eos_penalty: float | None = -1.0
    """Score given to responses that never emit EOS (None: keep their score)."""
    target_kl: float | None = None
    """End an iteration's update at the first minibatch whose approx-KL (before its step, averaged over
    processes) exceeds this; that minibatch is not stepped (None: never). The gymnasium PPO's rule."""
    ptx_coef: float = 0.0
    """PPO-ptx: weight of the demonstrations' log-likelihood (InstructGPT: 27.8); needs ptx records."""
    seed: int = 1
    """Seed of the run (prompt order, sampling)."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        for name in ("num_iterations", "batch_size", "minibatch_size", "update_epochs", "max_new_tokens"):
            require_positive(name, getattr(self, name))
        require(
            self.batch_size % self.minibatch_size == 0,
            f"batch_size {self.batch_size} is not a multiple of minibatch_size {self.minibatch_size}: "
            "fix --batch-size or --minibatch-size",
        )
        if self.estimator in GROUPED:
            require(
                self.group_size >= 2 and self.batch_size % self.group_size == 0,
                f"{self.estimator} needs group_size >= 2 dividing batch_size {self.batch_size}, got "
                f"{self.group_size}: fix --group-size (or --batch-size)",
            )
        require_positive("learning_rate", self.learning_rate)
        self.schedule.validate()
        require_positive("temperature", self.temperature)
        require(self.kl_coef >= 0, f"kl_coef must be >= 0, got {self.kl_coef}: fix --kl-coef")
        require_unit_interval("gamma", self.gamma)
        require_unit_interval("gae_lambda", self.gae_lambda)
        require(self.ptx_coef >= 0, f"ptx_coef must be >= 0, got {self.ptx_coef}: fix --ptx-coef")

    @property
    def kl_in_loss(self) -> bool:
        """The KL penalty is a loss term (else it is in the reward)."""
        return (self.kl_penalty or ("loss" if self.estimator == "grpo" else "reward")) == "loss"

    @property
    def has_critic(self) -> bool:
        return self.estimator == "ppo"
