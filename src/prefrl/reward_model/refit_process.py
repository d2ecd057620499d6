"""Refits in a process of their own (``prefrl rlhp --async-refit``), as the paper ran the reward
model's training asynchronously from the agent's.

The child holds the authoritative reward-model trainer (weights, Adam, L2, the split draws and its
random generator, copied from the parent when it starts); the parent keeps a copy of the model for
paying rewards and choosing queries, and replaces its weights with the child's when it joins a refit.
A refit thus runs on its own core, beside the PPO update, with no interpreter lock shared (a thread
shared it, and slowed the update by half). Tensors travel through shared memory
(``torch.multiprocessing``); the child is started with ``spawn`` (a forked child could inherit a
locked OpenMP pool) and runs torch on one thread.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import signal
import traceback
import weakref
from typing import Any

import gymnasium as gym
import torch

from prefrl.reward_model.ensemble import RewardModel
from prefrl.reward_model.trainer import RewardModelTrainer

FitArgs = tuple[Any, int | None, int | None, Any, tuple[torch.Tensor, torch.Tensor]]
"""The arguments of :meth:`RewardModelTrainer.refit`: (comparisons, max_steps, num_epochs, ratings,
(obs, actions) to normalise the reward on)."""


def _serve(
    connection: Any, spaces: tuple[gym.spaces.Box, gym.Space], configs: tuple[Any, Any], state: dict
) -> None:
    """The child's loop: ``("fit", FitArgs)`` -> ``(metrics, model state)``; ``("state", None)`` ->
    the trainer's state; ``("stop", None)`` ends it. An exception is sent back as its traceback."""
    # Ctrl-C in a terminal reaches the whole process group: the parent stops and checkpoints, which
    # needs this process's trainer state, so the child leaves SIGINT to the parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    model_config, trainer_config = configs
    model = RewardModel(*spaces, model_config)
    one_thread = dataclasses.replace(trainer_config, num_threads=1)  # the other core is PPO's
    trainer = RewardModelTrainer(model, one_thread, torch.Generator())
    model.load_state_dict(state["model"])
    trainer.load_state_dict(state["trainer"])
    while True:
        try:
            command, payload = connection.recv()
        except EOFError:  # the parent is gone
            return
        if command == "stop":
            return
        try:
            if command == "fit":
                metrics = trainer.refit(*payload)
                connection.send(("ok", (metrics, model.state_dict())))
            else:
                connection.send(("ok", trainer.state_dict()))
        except Exception:  # the parent re-raises it with the child's traceback
            connection.send(("error", traceback.format_exc()))


class RefitProcess:
    """``submit(FitArgs)``, then ``result() -> metrics`` (the parent's model then has the refitted
    weights and normalisation); ``trainer_state()`` for a checkpoint; ``close()`` at the end. At most
    one refit runs at a time."""

    def __init__(self, trainer: RewardModelTrainer, spaces: tuple[gym.spaces.Box, gym.Space]) -> None:
        """A child that continues ``trainer`` (and its model, whose weights it keeps up to date)."""
        self.model = model = trainer.model
        context = torch.multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        # copies: tensors pass through shared memory, and the parent's must not follow the child's
        state = copy.deepcopy({"model": model.state_dict(), "trainer": trainer.state_dict()})
        self.process = context.Process(
            target=_serve, args=(child, spaces, (model.config, trainer.config), state), daemon=True
        )
        self.process.start()
        child.close()
        self.pending = False
        self._finalizer = weakref.finalize(self, _stop, self.process, self.connection)

    def submit(self, args: FitArgs) -> None:
        assert not self.pending, "join the running refit first"
        self.connection.send(("fit", args))
        self.pending = True

    def result(self) -> dict[str, float]:
        """Wait for the submitted refit; load its weights into the parent's model; its metrics."""
        self.pending = False
        metrics, state = self._reply()
        self.model.load_state_dict(state)
        return metrics

    def trainer_state(self) -> dict[str, Any]:
        """The child's trainer state (:meth:`RewardModelTrainer.state_dict`), with no refit running."""
        assert not self.pending, "join the running refit first"
        self.connection.send(("state", None))
        return self._reply()

    def _reply(self) -> Any:
        try:
            status, payload = self.connection.recv()
        except EOFError:
            raise RuntimeError(
                f"the refit process ended (exit code {self.process.exitcode}); rerun without --async-refit"
            ) from None
        if status == "error":
            raise RuntimeError(f"the refit process failed:\n{payload}")
        return payload

    def close(self) -> None:
        """Stop the child (a running refit is abandoned); also when the parent drops this object."""
        self._finalizer()


def _stop(process: Any, connection: Any) -> None:
    if process.is_alive():
        with contextlib.suppress(BrokenPipeError, OSError):
            connection.send(("stop", None))
        process.join(timeout=5)
        if process.is_alive():
            process.terminate()
    connection.close()
