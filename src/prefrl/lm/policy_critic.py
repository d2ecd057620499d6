"""The modules PPO-RLHF trains: the policy and its critic, as one module for data parallelism."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

from prefrl.lm.data import Batch, stack_batches
from prefrl.lm.generation import response_logits
from prefrl.lm.lora import AdaptersOff, base_model
from prefrl.lm.reward_model import ScalarRewardModel

if TYPE_CHECKING:
    from transformers import PreTrainedModel

PARTS = ("policy", "critic")
"""The submodules of :class:`PolicyAndCritic` (prefixes of its state dict)."""


def zero_critic(policy: PreTrainedModel) -> ScalarRewardModel:
    """A value head on a copy of the policy's trunk, initialised to zero."""
    critic = ScalarRewardModel.from_causal_lm(base_model(policy))  # the trunk, without adapters
    torch.nn.init.zeros_(critic.head.weight)
    return critic


def rl_roles(
    policy: PreTrainedModel,
    reward_model: ScalarRewardModel | None,
    critic: Any | None,
    reference: PreTrainedModel | AdaptersOff | None,
    with_critic: bool = True,
) -> tuple[Any, ScalarRewardModel | None]:
    """(reference, critic) for PPO: a copy of the policy as given, and a copy of the reward model or
    a zero value head on the policy's trunk, unless given (none ``with_critic`` False: the critic-free
    estimators); the critic trains, the reference and the reward model are frozen, and every module
    is in eval mode (no dropout in RL)."""
    reference = reference if reference is not None else copy.deepcopy(policy)
    if not with_critic:
        critic = None
    elif critic is None:
        critic = copy.deepcopy(reward_model) if reward_model is not None else zero_critic(policy)
    if critic is not None:
        critic.requires_grad_(True)  # a copy of a frozen reward model must still learn
    for frozen in (reference, reward_model):
        if frozen is not None:
            frozen.requires_grad_(False)
    for module in (policy, reference, critic, reward_model):
        if module is not None:
            module.eval()
    return reference, critic


class PolicyAndCritic(torch.nn.Module):
    """The trained modules as one, so that data parallelism wraps (and synchronises) both in one
    forward: response logits of the policy, per-token values of the critic, and optionally the
    policy's logits on a batch of demonstrations (PPO-ptx)."""

    def __init__(self, policy: PreTrainedModel, critic: ScalarRewardModel | None) -> None:
        super().__init__()
        self.policy, self.critic = policy, critic

    @property
    def parts(self) -> tuple[str, ...]:
        """The submodules it holds (prefixes of its state dict): policy, and critic if any."""
        return PARTS if self.critic is not None else PARTS[:1]

    def forward(
        self, batch: Batch, ptx_batch: Batch | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """-> (B, R, V) fp32 logits, (B, R) values (zeros without a critic), demonstrations' logits or
        None. The policy runs once on the rollout and the demonstrations stacked (a sharded policy is
        gathered once)."""
        if self.critic is not None:
            values = self.critic.response_values(batch)
        else:
            values = torch.zeros(batch.response_mask.shape, device=batch.input_ids.device)
        if ptx_batch is None:
            return response_logits(self.policy, batch), values, None
        logits = response_logits(self.policy, stack_batches(batch, ptx_batch))
        rows, length, ptx_length = (
            len(batch.input_ids),
            batch.response_mask.shape[1],
            ptx_batch.response_mask.shape[1],
        )
        return logits[:rows, :length], values, logits[rows:, :ptx_length]
