"""Reward-model networks with an explicit ensemble member axis E.

An ensemble of E MLPs is stored as stacked weights (E, in, out), so all members run in one batched
matmul; each member can get its own inputs (bootstrap resamples) or share one batch.
"""

from __future__ import annotations

import itertools
import math
from typing import cast

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
        return torch.stack([self._member(x[e], e) for e in range(self.num_members)])

    def _member(self, x: torch.Tensor, e: int) -> torch.Tensor:
        """(N, in) -> (N,) member e. One matmul per member and layer (``addmm``) rather than one
        batched matmul over the members: the same sums, and cheaper fits on a CPU, whose batched matmul
        backward was the slow part (the demo's refits 23% cheaper; ``benchmarks/reward_fit_step.py``)."""
        for layer in cast("list[EnsembleLinear]", self.hidden):
            x = torch.addmm(layer.bias[e], x, layer.weight[e])
            x = self.dropout(nn.functional.leaky_relu(x, LEAKY_SLOPE))
        with torch.autocast(x.device.type, enabled=False):  # the per-step reward in float32 always
            return torch.addmm(self.out.bias[e], x.float(), self.out.weight[e]).squeeze(-1)

    def weight_norms(self) -> torch.Tensor:
        """(E,) sum of squared weights (not biases) of each member, for the L2 penalty."""
        layers = [*self.hidden, self.out]
        return sum((layer.weight.pow(2).sum(dim=(1, 2)) for layer in layers), torch.zeros(self.num_members))


class EnsembleCNN(nn.Module):
    """E convolutional reward nets on stacked frames, run as one grouped convolution per layer:
    Christiano et al.'s Atari predictor (4 conv layers 7x7, 5x5, 3x3, 3x3 with strides 3, 2, 1, 1 and
    16 filters each, batch norm, dropout, leaky ReLU; a 64-unit layer; a scalar output) per member.
    The dropout drops whole feature maps (``Dropout2d``, the usual form for conv layers): per-pixel
    dropout cost more than the convolutions themselves on a CPU (its random numbers). Channels-last
    convolutions (1.5x on a CPU)."""

    KERNELS = ((7, 3), (5, 2), (3, 1), (3, 1))
    """(kernel size, stride) of the conv layers."""

    def __init__(
        self,
        num_members: int,
        frame_shape: tuple[int, ...],
        filters: int = 16,
        hidden: int = 64,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_members = num_members
        self.frame_shape = tuple(frame_shape)
        channels, height, width = self.frame_shape
        layers: list[nn.Module] = []
        in_ch = channels
        for kernel, stride in self.KERNELS:
            layers += [
                nn.Conv2d(num_members * in_ch, num_members * filters, kernel, stride, groups=num_members),
                nn.BatchNorm2d(num_members * filters),
                nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]
            in_ch = filters
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        if min(height, width) < 1:
            raise ValueError(f"frames of shape {frame_shape} are too small for the reward net: use 84x84")
        self.convs = nn.Sequential(*layers)
        self.convs.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.hidden = EnsembleLinear(num_members, filters * height * width, hidden)
        self.out = EnsembleLinear(num_members, hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(E, N, C, H, W) per-member frames, or (N, C, H, W) shared by every member (uint8 or floats
        in 0..255) -> (E, N)."""
        e = self.num_members
        if x.dim() == 4:
            n = x.shape[0]
            x = x.unsqueeze(1).expand(n, e, *x.shape[1:])
        else:
            assert x.shape[0] == e, tuple(x.shape)
            n = x.shape[1]
            x = x.transpose(0, 1)
        assert tuple(x.shape[2:]) == self.frame_shape, tuple(x.shape)
        x = x.reshape(n, -1, *x.shape[3:]).contiguous(memory_format=torch.channels_last)
        h = self.convs(x.float().mul_(1.0 / 255.0))  # (N, E * filters, h, w)
        h = h.reshape(n, e, -1).transpose(0, 1)  # (E, N, filters * h * w)
        h = nn.functional.leaky_relu(self.hidden(h), LEAKY_SLOPE)
        return self.out(h).squeeze(-1)

    def weight_norms(self) -> torch.Tensor:
        """(E,) sum of squared weights of each member (its conv kernels and linear layers)."""
        e = self.num_members
        norms = [
            layer.weight.pow(2).reshape(e, -1).sum(1) for layer in self.convs if isinstance(layer, nn.Conv2d)
        ]
        norms += [layer.weight.pow(2).sum(dim=(1, 2)) for layer in (self.hidden, self.out)]
        return sum(norms, torch.zeros(e))
