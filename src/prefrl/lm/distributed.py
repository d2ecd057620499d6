"""Data parallelism through Hugging Face ``accelerate`` (DDP), fully sharded with torch's FSDP2
(:func:`shard_model`), or DeepSpeed ZeRO (:mod:`prefrl.lm.zero`); see :data:`Parallel`. Every rank
draws the same global batch of indices (the data order is seeded alike on all ranks) and trains on
its shard; losses are normalised by the global
batch, so the averaged gradient equals one process's on the whole batch. Sampling and dropout seeds
are offset by rank.

PPO (:mod:`prefrl.lm.ppo`) splits differently: each rank samples and scores its contiguous
:func:`chunk` of the iteration's prompts (generation is the expensive part), then every rank gathers
the whole batch (:func:`gather_padded`; a few (B, R) tensors), so the rewards, whitening and
advantages are computed over the global batch as one process would; each minibatch is then chunked
over the ranks again, with the loss scaled by :func:`token_share` so the averaged gradient is the
global token mean.

Run any script or ``prefrl lm sft|rm|ppo`` under ``accelerate launch --num_processes N``.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import torch

from prefrl.lm import zero
from prefrl.lm.data import Batch, batch_from_tensors
from prefrl.validation import require_one_of

if TYPE_CHECKING:
    from accelerate import Accelerator

T = TypeVar("T")


def rank_and_world(accelerator: Accelerator | None) -> tuple[int, int]:
    if accelerator is None:
        return 0, 1
    return int(accelerator.process_index), int(accelerator.num_processes)


def _check_split(size: int, world: int) -> None:
    if size % world:
        raise ValueError(
            f"a global batch of {size} does not split over {world} processes: make the batch size "
            "a multiple of the number of processes"
        )


def shard(items: Sequence[T], accelerator: Accelerator | None) -> list[T]:
    """This rank's share of a global batch (rank r takes items r, r + N, ...)."""
    rank, world = rank_and_world(accelerator)
    _check_split(len(items), world)
    return list(items[rank::world])


def chunk(size: int, accelerator: Accelerator | None) -> slice:
    """This rank's contiguous slice of a global batch of ``size`` (rank r takes the r-th of N equal
    slices), so that gathering the ranks' results in rank order gives back the global order."""
    rank, world = rank_and_world(accelerator)
    _check_split(size, world)
    share = size // world
    return slice(rank * share, (rank + 1) * share)


def gather_padded(
    accelerator: Accelerator | None, tensor: torch.Tensor, pad_value: float, pad_first: bool = False
) -> torch.Tensor:
    """Every rank's (B_r, L_r, ...) tensor, padded along dim 1 to the longest L (on the left with
    ``pad_first``, for left-padded prompts) and concatenated along dim 0 in rank order. 1-D tensors
    are concatenated as they are. Unchanged without an accelerator."""
    if accelerator is None:
        return tensor
    if tensor.dim() > 1:
        tensor = accelerator.pad_across_processes(tensor, dim=1, pad_index=pad_value, pad_first=pad_first)
    return accelerator.gather(tensor)


def gather_rollout(
    accelerator: Accelerator | None,
    pad: int,
    p_ids: torch.Tensor,
    p_mask: torch.Tensor,
    responses: torch.Tensor,
    mask: torch.Tensor,
    parts: dict[str, torch.Tensor],
) -> tuple[Batch, dict[str, torch.Tensor]]:
    """PPO's global batch from every rank's share: (B_r, P_r) prompts re-padded on the left, (B_r, R_r)
    responses and per-token ``parts`` on the right, concatenated in rank order; unchanged for one
    process."""
    p_ids = gather_padded(accelerator, p_ids, pad, pad_first=True)
    p_mask = gather_padded(accelerator, p_mask.long(), 0, pad_first=True).bool()
    responses = gather_padded(accelerator, responses, pad)
    mask = gather_padded(accelerator, mask.long(), 0).bool()
    parts = {key: gather_padded(accelerator, value, 0.0) for key, value in parts.items()}
    return batch_from_tensors(p_ids, p_mask, responses, mask), parts


def token_share(
    local_mask: torch.Tensor, global_mask: torch.Tensor, accelerator: Accelerator | None
) -> float:
    """Factor that turns this rank's token mean into its part of the global token mean under DDP's
    gradient averaging: n_rank * world / n_global (1.0 for one process)."""
    _, world = rank_and_world(accelerator)
    return float(local_mask.sum()) * world / max(float(global_mask.sum()), 1.0)


def mean_over_ranks(accelerator: Accelerator | None, values: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over the ranks (identity for one process)."""
    if accelerator is None:
        return values
    return accelerator.reduce(values.to(accelerator.device), reduction="mean").cpu()


def rank_seed(seed: int, accelerator: Accelerator | None) -> int:
    """The run's seed offset by the process rank (for sampling and dropout, never for data order)."""
    rank, _ = rank_and_world(accelerator)
    torch.manual_seed(seed + rank)
    return seed + rank


Parallel = Literal["ddp", "fsdp", "zero1", "zero2", "zero3"]
"""How several processes share a model: "ddp" replicates it (gradients averaged); "fsdp" shards
weights, gradients and optimizer state (torch FSDP2, :func:`shard_model`); "zero1", "zero2" and
"zero3" are DeepSpeed ZeRO's stages: the optimizer state, then the gradients, then the weights
partitioned (:mod:`prefrl.lm.zero`). All make the update of one process on the same global batch."""


MixedPrecision = Literal["no", "bf16"]
"""With "bf16" every forward pass runs under bfloat16 autocast (matrix products in bf16); weights,
gradients, optimizer, log-softmax and losses stay fp32 (scores and values are cast to fp32). For
GPUs with bf16 (A100, H100 and later); on CPUs without bf16 units it is slower than fp32."""


def autocast(
    device: torch.device, mixed_precision: MixedPrecision = "no"
) -> Callable[[], contextlib.AbstractContextManager]:
    """The context every forward pass of a trainer (sampling, scoring, training) runs in, as a
    factory: ``with self.autocast(): ...``. ValueError with the fix for an unknown precision."""
    require_one_of("mixed precision", mixed_precision, MixedPrecision)
    if mixed_precision == "no":
        return contextlib.nullcontext
    return partial(torch.autocast, device.type, dtype=torch.bfloat16)


def prepare(
    accelerator: Accelerator | None,
    model: Any,
    make_optimizer: Callable[[Any], Any],
    parallel: Parallel = "ddp",
    units: Sequence[Any] = (),
    mixed_precision: MixedPrecision = "no",
) -> tuple[Any, Any]:
    """(module to call forward on, its optimizer): DDP-wrapped under accelerate; sharded in place by
    FSDP2 (``parallel="fsdp"``, :func:`shard_model`, ``units`` its roots) with the optimizer built on
    the shards; a DeepSpeed engine standing for both under ZeRO; unchanged without an accelerator.
    One process (a single GPU) is never sharded. The optimizer is built here, after any sharding, on
    the final parameters."""
    require_one_of("parallel mode", parallel, Parallel)
    if accelerator is None:
        return model, make_optimizer(model.parameters())
    if accelerator.num_processes > 1 and parallel == "fsdp":
        model.to(accelerator.device)  # NCCL broadcasts the weights from the device
        shard_model(model, units)
        return model, make_optimizer(model.parameters())
    if accelerator.num_processes > 1 and parallel in zero.STAGES:
        optimizer = make_optimizer(model.parameters())
        bf16 = mixed_precision == "bf16"
        engine = zero.initialize(model, optimizer, zero.STAGES[parallel], MAX_GRAD_NORM, bf16)
        return engine, engine
    return accelerator.prepare(model, make_optimizer(model.parameters()))


def shard_model(model: Any, units: Sequence[Any] = ()) -> None:
    """Fully sharded data parallelism with torch's FSDP2 (``fully_shard``): each transformer block (the
    classes a transformers model names in ``_no_split_modules``) is one unit, the rest (embeddings,
    final norm, heads) the root; every rank keeps 1/N of each, gathered just for its forward and
    backward. ``units``: the submodules called on their own (PPO samples from the policy alone),
    each then the root of its own sharded tree, in place of ``model``. The forward and backward of
    such a model are collective: every rank must run them, as often, each root once per backward."""
    from torch.distributed.fsdp import fully_shard

    names = {n for m in model.modules() for n in (getattr(m, "_no_split_modules", None) or [])}
    if not names:
        raise ValueError(
            f"{type(model).__name__} names no transformer block class (_no_split_modules): "
            "train it with --parallel ddp, zero1 or zero2"
        )
    import torch.distributed as dist

    for tensor in [*model.parameters(), *model.buffers()]:  # rank 0's weights everywhere, as DDP
        dist.broadcast(tensor.data, src=0)
    for module in list(model.modules()):
        if type(module).__name__ in names:
            fully_shard(module)
    for unit in units or [model]:
        fully_shard(unit)


def register_forward_method(unit: Any, name: str) -> None:
    """Make a sharded unit gather its parameters for ``unit.name(...)`` as for its forward."""
    from torch.distributed.fsdp import register_fsdp_forward_method

    register_fsdp_forward_method(unit, name)


def device_of(accelerator: Accelerator | None, model: Any) -> torch.device:
    """Where a trainer's batches go: the accelerator's device, else the model's."""
    if accelerator is not None:
        return torch.device(accelerator.device)
    return next(model.parameters()).device


def all_ranks(flag: bool, device: torch.device | str = "cpu") -> bool:
    """Whether ``flag`` holds on every rank (itself outside a process group); ``device``: where the
    process group's backend reduces (CUDA for NCCL)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def stop_agreement(accelerator: Accelerator | None) -> Callable[[bool], bool] | None:
    """For several processes: this process's stop request -> whether any process was asked to stop
    (collective, every iteration), so that all of them stop, and save, after the same iteration."""
    if accelerator is None or accelerator.num_processes == 1:
        return None
    device = torch.device(accelerator.device)
    return lambda requested: not all_ranks(not requested, device)


def is_sharded(model: Any) -> bool:
    """Whether ``model``'s parameters are split over the ranks: it is, or holds, a module sharded by
    :func:`shard_model`, or ZeRO stage 3 partitioned it. Its forward is then collective."""
    from torch.distributed.fsdp import FSDPModule

    if not isinstance(model, torch.nn.Module):
        return False
    return zero.is_partitioned(model) or any(isinstance(m, FSDPModule) for m in model.modules())


def state_is_collective(model: Any, optimizer: Any) -> bool:
    """Whether reading the (model, optimizer) state takes every rank (:func:`full_state`)."""
    return is_sharded(model) or zero.is_engine(optimizer)


def full_state(model: Any, optimizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, optimizer) state dicts with whole tensors on the CPU. For a sharded model this is
    collective (every rank calls it), keyed by parameter name (torch.distributed.checkpoint), and only
    rank 0 gets the tensors (the others get empty dicts): rank 0 writes checkpoints. Under ZeRO the
    optimizer state is every rank's partition (:func:`zero.full_state`)."""
    if zero.is_engine(optimizer):
        return zero.full_state(model, optimizer)
    if not is_sharded(model):
        return model.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_state(
    model: Any, optimizer: Any, model_state: dict[str, Any], optim_state: dict[str, Any]
) -> None:
    """Inverse of :func:`full_state` (every rank passes the whole state; each keeps its shard)."""
    if zero.is_engine(optimizer) or "partitions" in optim_state:
        zero.load_full_state(model, optimizer, model_state, optim_state)
        return
    if not is_sharded(model):
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    options = StateDictOptions(full_state_dict=True)
    set_state_dict(
        model, optimizer, model_state_dict=model_state, optim_state_dict=optim_state, options=options
    )


def backward(accelerator: Accelerator | None, loss: torch.Tensor) -> None:
    if accelerator is None:
        loss.backward()
    else:
        accelerator.backward(loss)


MAX_GRAD_NORM = 1.0
"""Gradient-norm clip of every language-model optimizer step."""


def optimizer_step(accelerator: Accelerator | None, params: Any, optimizer: Any, loss: torch.Tensor) -> None:
    """One step: zero the gradients, backward (synchronised under accelerate), clip, step. Under ZeRO
    ``optimizer`` is the DeepSpeed engine, which does the same (:func:`zero.step`)."""
    if zero.is_engine(optimizer):
        zero.step(optimizer, loss)
        return
    optimizer.zero_grad(set_to_none=True)
    backward(accelerator, loss)
    torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
    optimizer.step()


def finish() -> None:
    """Leave the process group, if this process joined one, once every rank got here: a gloo
    process that exits without it can abort ("terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()  # DDP wrappers left in reference cycles go while their process group exists
        dist.barrier()
        dist.destroy_process_group()
