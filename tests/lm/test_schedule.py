"""An LM trainer's learning rate follows its schedule (warmup, then decay)."""

import random

import pytest

from prefrl.optim import LRSchedule


def test_an_lm_trainer_follows_its_schedule(tokenizer):
    from prefrl.lm import tiny_task
    from prefrl.lm.sft import SFTConfig, SFTTrainer

    model = tiny_task.build_tiny_model(tokenizer, seed=0)
    records = tiny_task.sft_records(random.Random(0), 64)
    config = SFTConfig(batch_size=16, num_epochs=1, learning_rate=1e-2, schedule=LRSchedule(1, "linear"))
    trainer = SFTTrainer(model, tokenizer, records, config)
    rates = [trainer.train_iteration()["lm/learning_rate"] for _ in range(4)]
    assert rates == pytest.approx([5e-3, 1e-2, 1e-2 * 2 / 3, 1e-2 / 3])
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 / 3)
