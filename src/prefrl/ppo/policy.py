"""Actor-critic MLPs for Discrete and Box action spaces, with orthogonal init (or torch's default).

Box actions come from a diagonal Gaussian with a learned, state-independent log-std, or with
generalized state-dependent exploration (gSDE, Raffin et al. 2022: the noise is a linear function of
the actor's last hidden features, its weights drawn every few steps); samples are kept unclipped for
the log-probabilities and clipped to the bounds only where they enter the env
(:meth:`ActorCritic.env_actions`). The distributions are written out as log-space formulas, which
are several times faster than ``torch.distributions`` at these sizes.
"""

from __future__ import annotations

import math
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

LOG_2PI = math.log(2.0 * math.pi)
SDE_EPS = 1e-6
"""Added to the state-dependent variance before its square root (as Stable-Baselines3 does)."""
Activation = Literal["tanh", "relu"]


def layer_init(layer: nn.Linear, gain: float, ortho: bool = True) -> nn.Linear:
    """Orthogonal weights with ``gain`` and zero bias (the PPO implementation-detail default), or
    (``ortho`` False) the layer as torch initialised it."""
    if ortho:
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


def mlp(
    in_dim: int, hidden: tuple[int, ...], out_dim: int, out_gain: float, act: Activation, ortho: bool = True
) -> nn.Sequential:
    layers: list[nn.Module] = []
    last = in_dim
    for size in hidden:
        layers += [
            layer_init(nn.Linear(last, size), math.sqrt(2), ortho),
            nn.Tanh() if act == "tanh" else nn.ReLU(),
        ]
        last = size
    layers.append(layer_init(nn.Linear(last, out_dim), out_gain, ortho))
    return nn.Sequential(*layers)


def categorical_logprob_entropy(
    logits: torch.Tensor, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K) logits, (N,) int actions -> (N,) log pi(a), (N,) entropy."""
    logp = torch.log_softmax(logits, dim=-1)
    logprob = logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return logprob, entropy


def gumbel_max_sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(N, K) logits -> (N,) samples of Categorical(logits): argmax(logits + Gumbel noise), with the
    noise as -log(Exp(1)); a third of the cost of softmax + multinomial at these sizes."""
    exp = torch.empty_like(logits).exponential_(generator=generator)
    return (logits - exp.clamp_min_(torch.finfo(logits.dtype).tiny).log()).argmax(-1)


def gaussian_logprob_entropy(
    mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, A) mean, (A,) or (N, A) log-std, (N, A) actions -> (N,) log pi(a), (N,) entropy
    (diagonal)."""
    z = (actions - mean) * torch.exp(-log_std)
    logprob = (-0.5 * z.pow(2) - log_std - 0.5 * LOG_2PI).sum(-1)
    entropy = (0.5 + 0.5 * LOG_2PI + log_std).sum(-1).expand(mean.shape[0])
    return logprob, entropy


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs on flat observations."""

    action_low: torch.Tensor
    action_high: torch.Tensor
    batched_evaluation = True
    """The rollout samples with the actor alone and evaluates all its steps in one batch afterwards."""

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        action_space: gym.Space,
        hidden_sizes: tuple[int, ...] = (64, 64),
        activation: Activation = "tanh",
        init_log_std: float = 0.0,
        sde: bool = False,
        ortho_init: bool = True,
    ) -> None:
        super().__init__()
        obs_dim = int(np.prod(observation_space.shape))
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.sde = sde and not self.discrete
        """gSDE: ``log_std`` is (F, A), the log-std of the weights of the noise's linear map from the
        actor's last hidden features (F of them) to the actions."""
        self.exploration = torch.zeros(0)
        """(B, F, A) the noise's weights per env, drawn by :meth:`reset_noise` (not saved)."""
        if self.discrete:
            assert isinstance(action_space, gym.spaces.Discrete)
            out_dim = int(action_space.n)
        else:
            assert isinstance(action_space, gym.spaces.Box)
            out_dim = int(action_space.shape[0])
            self.register_buffer("action_low", torch.as_tensor(action_space.low, dtype=torch.float32))
            self.register_buffer("action_high", torch.as_tensor(action_space.high, dtype=torch.float32))
            features = hidden_sizes[-1] if hidden_sizes else obs_dim
            shape = (features, out_dim) if self.sde else (out_dim,)
            self.log_std = nn.Parameter(torch.full(shape, float(init_log_std)))
        self.actor = mlp(obs_dim, hidden_sizes, out_dim, 0.01, activation, ortho_init)
        self.critic = mlp(obs_dim, hidden_sizes, 1, 1.0, activation, ortho_init)
        self._activation = torch.tanh if activation == "tanh" else torch.relu
        self._linears = {
            name: tuple(layer for layer in net if isinstance(layer, nn.Linear))
            for name, net in (("actor", self.actor), ("critic", self.critic))
        }

    def _forward(self, name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``self.actor(x)`` or ``self.critic(x)`` with ``F.linear`` and the activation called
        directly: the same values at half the cost for one row on a CPU, where nn.Module's per-call
        dispatch outweighs the arithmetic (module hooks are not run). (N, D) -> the last hidden
        features (N, F) (gSDE's noise is a map of the actor's) and the output."""
        *hidden, last = self._linears[name]
        for layer in hidden:
            x = self._activation(F.linear(x, layer.weight, layer.bias))
        return x, F.linear(x, last.weight, last.bias)

    def reset_noise(self, num_envs: int, generator: torch.Generator | None = None) -> None:
        """gSDE: draw each of ``num_envs`` envs' noise weights, (F, A) ~ N(0, exp(log_std)^2)."""
        std = self.log_std.detach().exp()
        self.exploration = torch.empty((num_envs, *std.shape), device=std.device).normal_(generator=generator)
        self.exploration.mul_(std)

    def _sde_log_std(self, features: torch.Tensor) -> torch.Tensor:
        """(N, F) -> (N, A) log-std of gSDE's actions: the variance sum_f features_f^2 std_fa^2 (the
        features detached, as SB3's default: the noise does not train the actor's layers)."""
        variance = features.detach().pow(2) @ self.log_std.exp().pow(2)
        return 0.5 * torch.log(variance + SDE_EPS)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,)"""
        return self._forward("critic", obs)[1].squeeze(-1)

    def sample(
        self,
        obs: torch.Tensor,
        generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> torch.Tensor:
        """(N, D) -> actions (N,) or (N, A), sampled (or the mode when ``deterministic``). The actor
        alone: a rollout calls this every step and gets log-probs and values of all its steps from
        one batched :meth:`evaluate` afterwards (the policy does not change during a rollout)."""
        features, out = self._forward("actor", obs)
        if self.discrete:
            return out.argmax(-1) if deterministic else gumbel_max_sample(out, generator)
        if deterministic:
            return out
        if self.sde:
            if self.exploration.shape[0] != out.shape[0]:  # a batch of another size (not a rollout's)
                self.reset_noise(out.shape[0], generator)
            return out + torch.einsum("nf,nfa->na", features, self.exploration)
        noise = torch.empty_like(out).normal_(generator=generator)
        return out + noise * self.log_std.exp()

    def act(
        self,
        obs: torch.Tensor,
        generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, D) -> sampled actions (N,) or (N, A), their log-probs (N,), values (N,)."""
        actions = self.sample(obs, generator, deterministic)
        logprob, _, value = self.evaluate(obs, actions)
        return actions, logprob, value

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, D), actions -> log-probs (N,), entropies (N,), values (N,)."""
        features, out = self._forward("actor", obs)
        if self.discrete:
            logprob, entropy = categorical_logprob_entropy(out, actions)
        else:
            log_std = self._sde_log_std(features) if self.sde else self.log_std
            logprob, entropy = gaussian_logprob_entropy(out, log_std, actions)
        return logprob, entropy, self.value(obs)

    def env_actions(self, actions: torch.Tensor) -> np.ndarray:
        """Policy actions -> what the env receives: Box samples clipped to the action bounds."""
        actions = actions.detach()
        if self.discrete:
            return actions.cpu().numpy()
        return torch.clamp(actions, self.action_low, self.action_high).cpu().numpy()
