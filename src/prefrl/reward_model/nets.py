"""Reward-model networks with an explicit ensemble member axis E.

An ensemble of E MLPs is stored as stacked weights (E, in, out), so all members run in one batched
matmul; each member can get its own inputs (bootstrap resamples) or share one batch.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

LEAKY_SLOPE = 0.01
"""Negative slope of the leaky ReLU (Christiano et al. 2017 use 0.01)."""


class EnsembleLinear(nn.Module):
    """E independent affine maps: (E, N, in) -> (E, N, out), each initialised like ``nn.Linear``."""

    def __init__(self, num_members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(num_members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """E MLPs with leaky-ReLU hidden layers and optional dropout; scalar output per input row."""

    def __init__(
        self, num_members: int, in_dim: int, hidden_sizes: tuple[int, ...] = (64, 64), dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.num_members = num_members
        self.in_dim = in_dim
        sizes = (in_dim, *hidden_sizes)
        self.hidden = nn.ModuleList(EnsembleLinear(num_members, a, b) for a, b in itertools.pairwise(sizes))
        self.out = EnsembleLinear(num_members, sizes[-1], 1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(E, N, in) per-member inputs, or (N, in) shared by every member -> (E, N)."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.num_members, *x.shape)
        assert x.shape[0] == self.num_members and x.shape[-1] == self.in_dim, tuple(x.shape)
        for layer in self.hidden:
            x = self.dropout(nn.functional.leaky_relu(layer(x), LEAKY_SLOPE))
        return self.out(x).squeeze(-1)

    def weight_norms(self) -> torch.Tensor:
        """(E,) sum of squared weights (not biases) of each member, for the L2 penalty."""
        layers = [*self.hidden, self.out]
        return sum((layer.weight.pow(2).sum(dim=(1, 2)) for layer in layers), torch.zeros(self.num_members))
