"""What the supervised language-model trainers (SFT, reward model) share: AdamW under optional data
parallelism, a seeded data order drawn an epoch at a time (the same on every rank), a step count,
and their checkpoint state."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prefrl.lm import distributed
from prefrl.optim import LRSchedule, adam, set_learning_rate
from prefrl.validation import require

if TYPE_CHECKING:
    from accelerate import Accelerator

LossOf = Callable[[list[int], float], tuple[torch.Tensor, dict[str, Any]]]
"""(indices of a part, its share of the step's indices) -> (its scaled loss, its scaled statistics)."""


class SupervisedSteps:
    """One minibatch of ``batch_size`` indices per step, ``num_steps`` steps. Subclasses say what an
    epoch's order is (:meth:`epoch_order`) and what a step does (``train_iteration``)."""

    def __init__(
        self,
        model: torch.nn.Module,
        learning_rate: float,
        batch_size: int,
        num_steps: int,
        seed: int,
        accelerator: Accelerator | None,
        parallel: distributed.Parallel = "ddp",
        mixed_precision: distributed.MixedPrecision = "no",
        schedule: LRSchedule | None = None,
        grad_accum_steps: int = 1,
    ) -> None:
        """``parallel``: how the processes of an accelerator share the model
        (:data:`distributed.Parallel`); ``mixed_precision``: see :data:`distributed.MixedPrecision`;
        ``grad_accum_steps``: each step's share of the batch in this many parts, one forward and
        backward each (less memory, the same step)."""
        require(grad_accum_steps >= 1, f"grad_accum_steps must be >= 1, got {grad_accum_steps}")
        require(
            grad_accum_steps == 1 or parallel == "ddp",
            f"--grad-accum-steps > 1 works with --parallel ddp, not {parallel}: lower --batch-size instead",
        )
        self.grad_accum_steps = grad_accum_steps
        self.model = model
        self.accelerator = accelerator
        self.forward_model, self.optimizer = distributed.prepare(
            accelerator,
            model,
            lambda params: adam(params, learning_rate, weight_decay=0.0),
            parallel,
            mixed_precision=mixed_precision,
        )
        """The module to call forward on (DDP-wrapped under accelerate) and its optimizer (under ZeRO,
        both the DeepSpeed engine)."""
        self.sharded = distributed.is_sharded(model)
        self.device = distributed.device_of(accelerator, model)
        """Where batches go (the accelerator's device under data parallelism)."""
        self.autocast = distributed.autocast(self.device, mixed_precision)
        """The context of every forward pass (bf16 autocast with ``mixed_precision="bf16"``)."""
        distributed.rank_seed(seed, accelerator)
        self.rng = random.Random(seed)  # the same data order on every rank
        self.batch_size = batch_size
        self.num_steps = num_steps
        self.learning_rate = learning_rate
        self.schedule = schedule or LRSchedule()
        self.step = 0
        self._order: list[int] = []

    @property
    def done(self) -> bool:
        return self.step >= self.num_steps

    def scheduled_learning_rate(self) -> float:
        """Set and return this step's learning rate (``schedule``); each step calls it first."""
        lr = self.learning_rate * self.schedule.factor(self.step, self.num_steps)
        set_learning_rate(self.optimizer, lr)
        return lr

    @property
    def global_step(self) -> int:
        return self.step

    def step_on(self, indices: list[int], loss_of: LossOf) -> dict[str, float]:
        """One optimizer step on this rank's ``indices``: ``loss_of(part, share)`` is the loss of a
        part of them (``share``: its share of the indices) scaled so that the parts' losses add up to
        the step's, with its statistics scaled alike; one backward per part (``grad_accum_steps``
        parts, gradients synchronised on the last), then one clipped step. The summed statistics."""
        if self.grad_accum_steps == 1:
            loss, stats = loss_of(indices, 1.0)
            distributed.optimizer_step(self.accelerator, self.model.parameters(), self.optimizer, loss)
            return {key: float(value) for key, value in stats.items()}
        parts = [p.tolist() for p in np.array_split(np.asarray(indices), self.grad_accum_steps) if len(p)]
        totals: dict[str, float] = {}
        self.optimizer.zero_grad(set_to_none=True)
        for n, part in enumerate(parts):
            accelerator = self.accelerator
            sync = n == len(parts) - 1 or accelerator is None
            no_sync = (
                contextlib.nullcontext()
                if sync or accelerator is None
                else accelerator.no_sync(self.forward_model)
            )
            with no_sync:  # DDP: gradients are averaged over the processes once, with the last part
                loss, stats = loss_of(part, len(part) / len(indices))
                distributed.backward(accelerator, loss)
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + float(value)
        torch.nn.utils.clip_grad_norm_(list(self.model.parameters()), distributed.MAX_GRAD_NORM)
        self.optimizer.step()
        return totals

    def epoch_order(self) -> list[int]:
        """The indices of one pass over the data, in the order they are trained on."""
        raise NotImplementedError

    def next_indices(self) -> list[int]:
        """The next global batch of indices (the same on every rank)."""
        if len(self._order) < self.batch_size:
            self._order += self.epoch_order()
        indices, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        return indices

    def state_dict(self) -> dict[str, Any]:
        """Whole tensors; collective for a sharded model or under ZeRO (every rank calls it)."""
        model, optimizer = distributed.full_state(self.model, self.optimizer)
        return {
            "model": model,
            "optimizer": optimizer,
            "step": self.step,
            "rng": self.rng.getstate(),
            "order": self._order,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        distributed.load_full_state(self.model, self.optimizer, state["model"], state["optimizer"])
        self.step = int(state["step"])
        self.rng.setstate(state["rng"])
        self._order = list(state["order"])
