"""Data parallelism through Hugging Face ``accelerate`` (DDP; DeepSpeed or FSDP through accelerate's
config files). Every rank draws the same global batch of indices (the data order is seeded alike on
all ranks) and trains on its shard; losses are normalised by the global batch, so the averaged
gradient equals one process's on the whole batch. Sampling and dropout seeds are offset by rank.

Run any script or ``prefrl lm sft|rm`` under ``accelerate launch --num_processes N``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def rank_and_world(accelerator: Any | None) -> tuple[int, int]:
    if accelerator is None:
        return 0, 1
    return int(accelerator.process_index), int(accelerator.num_processes)


def shard(items: Sequence[T], accelerator: Any | None) -> list[T]:
    """This rank's share of a global batch (rank r takes items r, r + N, ...)."""
    rank, world = rank_and_world(accelerator)
    if len(items) % world:
        raise ValueError(
            f"a global batch of {len(items)} does not split over {world} processes: make the batch size "
            "a multiple of the number of processes"
        )
    return list(items[rank::world])


def rank_seed(seed: int, accelerator: Any | None) -> int:
    """The run's seed offset by the process rank (for sampling and dropout, never for data order)."""
    rank, _ = rank_and_world(accelerator)
    torch.manual_seed(seed + rank)
    return seed + rank


def prepare(accelerator: Any | None, model: Any, optimizer: Any) -> tuple[Any, Any]:
    """(module to call forward on, optimizer): DDP-wrapped under accelerate, unchanged otherwise."""
    if accelerator is None:
        return model, optimizer
    return accelerator.prepare(model, optimizer)


def backward(accelerator: Any | None, loss: torch.Tensor) -> None:
    if accelerator is None:
        loss.backward()
    else:
        accelerator.backward(loss)


MAX_GRAD_NORM = 1.0
"""Gradient-norm clip of every language-model optimizer step."""


def optimizer_step(accelerator: Any | None, params: Any, optimizer: Any, loss: torch.Tensor) -> None:
    """One step: zero the gradients, backward (synchronised under accelerate), clip, step."""
    optimizer.zero_grad(set_to_none=True)
    backward(accelerator, loss)
    torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
    optimizer.step()
