import copy
import random

import pytest

from prefrl.lm import tiny_task
from prefrl.lm.sft import SFTConfig, SFTTrainer


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_task.build_tokenizer()


@pytest.fixture
def tiny_model(tokenizer):
    """An untrained tiny GPT-2 (2 layers, d = 64)."""
    return tiny_task.build_tiny_model(tokenizer, seed=0)


@pytest.fixture(scope="session")
def _sft_model(tokenizer):
    model = tiny_task.build_tiny_model(tokenizer, seed=0)
    records = tiny_task.sft_records(random.Random(0), 1500)
    trainer = SFTTrainer(model, tokenizer, records, SFTConfig(num_epochs=2, batch_size=32))
    while not trainer.done:
        trainer.train_iteration()
    return model.eval()


@pytest.fixture
def sft_model(_sft_model):
    """A tiny GPT-2 trained on 1500 synthetic reviews (a fresh copy per test)."""
    return copy.deepcopy(_sft_model)
