"""Gradient accumulation: a step in parts is the same step as in one piece (SFT, reward model, DPO)."""

import copy
import random

import pytest
import torch

from prefrl.lm import tiny_task
from prefrl.lm.dpo import DPOConfig, DPOTrainer
from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer
from prefrl.lm.reward_model import ScalarRewardModel, disable_dropout
from prefrl.lm.rm_training import RMConfig, RMTrainer
from prefrl.lm.sft import SFTConfig, SFTTrainer

PREFS = [
    {
        "prompt": f"review of the {dish} :",
        "chosen": f"the {dish} was great .",
        "rejected": f"the {dish} was bad .",
    }
    for dish in ("soup", "cake", "pizza", "salad")
] * 3


def build(kind, model, tokenizer, steps):
    disable_dropout(model)  # the same forward whether the batch comes whole or in parts
    if kind == "sft":
        records = tiny_task.sft_records(random.Random(0), 12)
        return SFTTrainer(
            model, tokenizer, records, SFTConfig(batch_size=12, num_epochs=2), grad_accum_steps=steps
        )
    if kind == "rm":
        rm = ScalarRewardModel.from_causal_lm(model)
        return RMTrainer(
            rm,
            tokenizer,
            PREFS,
            RMConfig(batch_size=12, num_epochs=2, length_chunks=1),
            grad_accum_steps=steps,
        )
    return DPOTrainer(model, tokenizer, PREFS, DPOConfig(batch_size=12, num_epochs=2), grad_accum_steps=steps)


@pytest.mark.parametrize("kind", ["sft", "rm", "dpo"])
def test_a_step_in_parts_is_the_same_step(sft_model, tokenizer, kind):
    whole = build(kind, copy.deepcopy(sft_model).eval(), tokenizer, 1)
    parts = build(kind, copy.deepcopy(sft_model).eval(), tokenizer, 3)
    a, b = whole.train_iteration(), parts.train_iteration()
    assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-7) for k in a), (a, b)
    grads = [
        (p.grad, q.grad) for p, q in zip(whole.model.parameters(), parts.model.parameters(), strict=True)
    ]
    assert all((g is None) == (h is None) for g, h in grads)
    assert all(torch.allclose(g, h, rtol=1e-4, atol=1e-7) for g, h in grads if g is not None)  # the same step


def test_accumulation_is_refused_where_it_does_not_apply(tiny_model, tokenizer):
    with pytest.raises(ValueError, match="lower --minibatch-size"):
        LMPPOTrainer(
            tiny_model,
            tokenizer,
            ["a"],
            LMPPOConfig(),
            reward_fn=lambda p, r: [0.0] * len(r),
            grad_accum_steps=2,
        )
    with pytest.raises(ValueError, match="works with --parallel ddp"):
        SFTTrainer(
            tiny_model,
            tokenizer,
            tiny_task.sft_records(random.Random(0), 4),
            SFTConfig(),
            parallel="fsdp",
            grad_accum_steps=2,
        )
