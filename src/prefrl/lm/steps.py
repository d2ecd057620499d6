"""What the supervised language-model trainers (SFT, reward model) share: AdamW under optional data
parallelism, a seeded data order drawn an epoch at a time (the same on every rank), a step count,
and their checkpoint state."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from prefrl.lm import distributed
from prefrl.optim import LRSchedule, adam, set_learning_rate

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator


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
    ) -> None:
        """``parallel``: how the processes of an accelerator share the model
        (:data:`distributed.Parallel`); ``mixed_precision``: see :data:`distributed.MixedPrecision`."""
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
