"""The one loop: every trainer meets the protocol; the loop logs each iteration once, checkpoints when
due, at the end and on a stop, evaluates once at the end, and stops cleanly on a signal."""

from __future__ import annotations

import inspect
import os
import signal
from typing import Any

import pytest

from prefrl.checkpoint import load_checkpoint
from prefrl.cli.loop import Checkpoints, Trainer, run_loop


class Counter:
    """A trainer of ``num`` iterations of ``step`` steps; ``signal_at``: sends itself SIGINT then."""

    def __init__(self, num: int = 10, step: int = 3, signal_at: int | None = None) -> None:
        self.iteration, self.num, self.step, self.signal_at = 0, num, step, signal_at

    @property
    def done(self) -> bool:
        return self.iteration >= self.num

    @property
    def global_step(self) -> int:
        return self.iteration * self.step

    def train_iteration(self) -> dict[str, float]:
        self.iteration += 1
        if self.iteration == self.signal_at:
            os.kill(os.getpid(), signal.SIGINT)
        return {"x": float(self.iteration)}

    def state_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = state["iteration"]


class Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.rows.append((step, dict(metrics)))

    def close(self) -> None:
        pass


class Saves(Checkpoints):
    def __init__(self, path, every_steps) -> None:
        super().__init__(path, every_steps)
        self.at: list[int] = []

    def save(self, trainer: Trainer) -> None:
        self.at.append(trainer.global_step)
        super().save(trainer)


def test_every_trainer_meets_the_protocol():
    from prefrl.lm.ppo import LMPPOTrainer
    from prefrl.lm.rm_training import RMTrainer
    from prefrl.lm.sft import SFTTrainer
    from prefrl.ppo.trainer import PPOTrainer
    from prefrl.rlhp import RLHPTrainer

    for cls in (PPOTrainer, RLHPTrainer, SFTTrainer, RMTrainer, LMPPOTrainer):
        for name in ("train_iteration", "state_dict", "load_state_dict"):
            assert callable(getattr(cls, name, None)), f"{cls.__name__} lacks {name}()"
        init = inspect.getsource(cls.__init__)
        for name in ("done", "global_step"):  # a property, or an attribute set in __init__
            assert isinstance(getattr(cls, name, None), property) or f"self.{name} =" in init, (cls, name)


def test_logs_once_checkpoints_when_due_and_evaluates_at_the_end(tmp_path):
    trainer, logger = Counter(num=10, step=3), Rows()
    saves = Saves(tmp_path / "last.pt", every_steps=7)
    evaluations = []

    def evaluate() -> dict[str, float]:
        evaluations.append(trainer.global_step)
        return {"eval/x": 1.0}

    metrics = run_loop(trainer, logger, saves, evaluate=evaluate)
    assert [step for step, _ in logger.rows] == list(range(3, 31, 3))  # one row per iteration
    assert saves.at == [9, 15, 21, 30]  # each multiple of 7 passed, and the end
    assert evaluations == [30] and metrics == {"x": 10.0, "eval/x": 1.0} and logger.rows[-1][1] == metrics
    assert load_checkpoint(tmp_path / "last.pt")["iteration"] == 10


def test_a_stop_signal_checkpoints_after_the_iteration_and_returns_none(tmp_path):
    trainer, saves = Counter(num=10, signal_at=4), Saves(tmp_path / "last.pt", every_steps=1000)
    assert run_loop(trainer, Rows(), saves) is None
    assert trainer.iteration == 4 and saves.at == [12]
    resumed = Counter(num=10)
    resumed.load_state_dict(load_checkpoint(tmp_path / "last.pt"))
    assert run_loop(resumed, Rows()) == {"x": 10.0}


def test_processes_stop_together_when_any_was_asked():
    asked = []

    def agree(requested: bool) -> bool:  # another process was asked to stop at its third iteration
        asked.append(requested)
        return len(asked) == 3

    trainer = Counter(num=10)
    assert run_loop(trainer, agree=agree) is None and trainer.iteration == 3


@pytest.mark.parametrize("write", [True, False])
def test_only_the_writing_process_writes(tmp_path, write):
    built = []
    checkpoints = Checkpoints(tmp_path / "last.pt", 1, state=lambda: built.append(1) or {}, write=write)
    run_loop(Counter(num=2), checkpoints=checkpoints)
    assert (tmp_path / "last.pt").exists() == write and len(built) == (2 if write else 0)
