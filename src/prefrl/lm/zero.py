"""DeepSpeed ZeRO for the language-model trainers (``parallel="zero1"|"zero2"|"zero3"``; the
``deepspeed`` extra). The trainers hand DeepSpeed their model and AdamW and get back an engine that
stands for both: forward through it, then :func:`step` (backward, gradient reduction, clip, optimizer
step). Stage 1 partitions the optimizer state over the ranks, stage 2 the gradients too, stage 3 the
parameters too (each gathered for its forward and backward, like FSDP).

Checkpoints keep the run directory's one file: the whole model (gathered under stage 3) and every
rank's optimizer partition, collected on rank 0; a resume must use the same number of processes.

``deepspeed.initialize`` is called directly, on the process group that ``accelerate`` (or torchrun)
started: accelerate's DeepSpeed plugin needs a GPU.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import torch

STAGES = {"zero1": 1, "zero2": 2, "zero3": 3}
"""``parallel`` names -> ZeRO stages."""


def name_cpu_accelerator() -> None:
    """Tell DeepSpeed that a machine without CUDA is a CPU one (``DS_ACCELERATOR=cpu``, unless set):
    otherwise, once installed, it warns on stdout in every ``prefrl lm`` run that it found no GPU."""
    if "DS_ACCELERATOR" not in os.environ and not torch.cuda.is_available():
        os.environ["DS_ACCELERATOR"] = "cpu"


def initialize(
    model: torch.nn.Module, optimizer: Any, stage: int, max_grad_norm: float, bf16: bool = False
) -> Any:
    """A DeepSpeed engine for ``model`` trained by ``optimizer`` (:func:`engine_config`)."""
    try:
        import deepspeed
    except ImportError as exc:  # pragma: no cover - the message is the point
        raise ImportError(
            "DeepSpeed ZeRO needs the deepspeed package: pip install 'prefrl[deepspeed]' "
            "(with your torch pinned), or train with --parallel ddp|fsdp"
        ) from exc
    import torch.distributed as dist

    world = dist.get_world_size() if dist.is_initialized() else 1
    config = engine_config(model, stage, world, max_grad_norm, bf16)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
    return engine


def engine_config(
    model: torch.nn.Module, stage: int, world: int, max_grad_norm: float, bf16: bool = False
) -> dict[str, Any]:
    """DeepSpeed's config: fp32 weights and optimizer, no DeepSpeed data loader (the trainers shard
    their batches themselves, so its batch sizes are placeholders), clipping as the other modes.
    ``bf16``: the engine's forward under bf16 autocast (DeepSpeed's ``torch_autocast``; an autocast
    opened outside it is switched off inside), gradients still reduced in fp32."""
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": 1,
        "train_batch_size": world,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": max_grad_norm,
        "zero_optimization": {"stage": stage, **bucket_sizes(model, stage)},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**62,
    }
    if bf16:
        config["torch_autocast"] = {"enabled": True, "dtype": "bfloat16", "lower_precision_safe_modules": []}
    return config


def bucket_sizes(model: torch.nn.Module, stage: int) -> dict[str, int]:
    """Communication buckets sized by the model's hidden size h, as transformers' DeepSpeed
    integration sizes its "auto" values: reduce h^2 elements at a time, prefetch 0.9 h^2, keep
    parameters under 10 h whole on every rank (stage 3); and stage 3 lets go of gathered weights
    past 4 h^2 elements (DeepSpeed keeps up to 1e9). DeepSpeed's own defaults (5e8-element buckets)
    are meant for billions of parameters and hold more than the model itself below that
    (`benchmarks/lm_parallel_memory.py`: ZeRO-3's peak at 1.16x DDP's with them, 0.70x with these)."""
    configs: list[Any] = [getattr(m, "config", None) for m in model.modules()]
    hidden = next((int(c.hidden_size) for c in configs if hasattr(c, "hidden_size")), None)
    if hidden is None:
        return {}
    sizes = {"reduce_bucket_size": hidden * hidden, "allgather_bucket_size": hidden * hidden}
    if stage == 3:
        sizes |= {
            "stage3_prefetch_bucket_size": int(0.9 * hidden * hidden),
            "stage3_param_persistence_threshold": 10 * hidden,
            "stage3_max_live_parameters": 4 * hidden * hidden,
            "stage3_max_reuse_distance": 4 * hidden * hidden,
        }
    return sizes


def is_engine(obj: Any) -> bool:
    """Whether ``obj`` is a DeepSpeed engine (without importing deepspeed when nothing did)."""
    if "deepspeed" not in sys.modules:
        return False
    from deepspeed import DeepSpeedEngine

    return isinstance(obj, DeepSpeedEngine)


def is_partitioned(model: Any) -> bool:
    """Whether ZeRO stage 3 partitioned ``model``'s parameters (each rank holds a slice)."""
    return isinstance(model, torch.nn.Module) and any(hasattr(p, "ds_id") for p in model.parameters())


def step(engine: Any, loss: torch.Tensor) -> None:
    """Backward (gradients reduced over the ranks, into their partitions), clip, step, zero."""
    engine.backward(loss)
    engine.step()


def full_state(model: Any, engine: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, optimizer) states on rank 0 (empty dicts elsewhere); collective. The model's whole
    tensors on the CPU; the optimizer: every rank's partition, in rank order."""
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    partitions: list[Any] | None = [None] * world if rank == 0 else None
    dist.gather_object(to_cpu(engine.optimizer.state_dict()), partitions, dst=0)
    model_state = _gathered_state(model, rank == 0) if is_partitioned(model) else model.state_dict()
    if rank != 0:
        return {}, {}
    model_state = {k: v.detach().cpu().clone() for k, v in model_state.items()}
    return model_state, {"zero_stage": engine.zero_optimization_stage(), "partitions": partitions}


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor in its dicts, lists and tuples copied to the CPU (a GPU tensor sent
    to rank 0 as an object would otherwise be rebuilt on the sender's device)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        items = [to_cpu(v) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    return obj


def _gathered_state(model: torch.nn.Module, keep: bool) -> dict[str, torch.Tensor]:
    """Stage 3: the whole state dict (collective: every rank gathers; only ``keep`` copies it out
    before the slices go back)."""
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()} if keep else {}


def load_full_state(
    model: Any, engine: Any, model_state: dict[str, Any], optim_state: dict[str, Any]
) -> None:
    """Inverse of :func:`full_state` (every rank passes the whole state; each keeps its partition)."""
    import torch.distributed as dist

    partitions = optim_state.get("partitions")
    if partitions is None:
        raise ValueError(
            "this checkpoint was not written under DeepSpeed ZeRO: resume it with the --parallel it "
            "was trained with"
        )
    world = dist.get_world_size() if dist.is_initialized() else 1
    stage = engine.zero_optimization_stage() if is_engine(engine) else None
    if len(partitions) != world or optim_state["zero_stage"] != stage:
        raise ValueError(
            f"this checkpoint holds ZeRO stage {optim_state['zero_stage']} optimizer partitions of "
            f"{len(partitions)} processes: resume with --parallel zero{optim_state['zero_stage']} on "
            f"{len(partitions)} processes (torchrun --nproc_per_node {len(partitions)})"
        )
    if is_partitioned(model):
        import deepspeed

        # every rank loads (buffers are not partitioned); rank 0's parameters are kept
        with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=0):
            model.load_state_dict(model_state)
    else:
        model.load_state_dict(model_state)
    # the optimizer's fp32 partitions are the master weights: restore them exactly
    engine.optimizer.load_state_dict(partitions, load_from_fp32_weights=True)
