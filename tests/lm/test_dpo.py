"""DPO against hand-worked numbers, its variants, and the trainer's mechanics."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from prefrl.lm.dpo import DPOConfig, DPOTrainer, dpo_loss

RECORDS = [
    {"prompt": "review of the soup :", "chosen": "the soup was great .", "rejected": "the soup was bad ."},
    {"prompt": "review of the cake :", "chosen": "the cake was great .", "rejected": "the cake was bad ."},
] * 4


def test_dpo_loss_is_the_bradley_terry_loss_of_the_implied_rewards():
    chosen, rejected = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -4.0])
    ref_chosen, ref_rejected = torch.tensor([-3.5, -4.0]), torch.tensor([-3.5, -4.5])
    loss, stats = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.5)
    margins = 0.5 * ((chosen - ref_chosen) - (rejected - ref_rejected))  # 0.5 * [1.0, -1.5]
    assert loss.item() == pytest.approx(-F.logsigmoid(margins).mean().item(), rel=1e-6)
    assert stats["accuracy"].item() == 0.5 and stats["margin"].item() == pytest.approx(-0.125)


def test_at_the_reference_the_loss_is_log_2_and_conservative_dpo_smooths_the_labels():
    logps = torch.tensor([-2.0, -3.0])
    loss, _ = dpo_loss(logps, logps, logps, logps, beta=0.1)
    assert loss.item() == pytest.approx(math.log(2))
    margin = torch.tensor([1.0])
    zero = torch.zeros(1)
    smoothed, _ = dpo_loss(margin, zero, zero, zero, beta=1.0, label_smoothing=0.2)
    assert smoothed.item() == pytest.approx(
        -(0.8 * F.logsigmoid(margin) + 0.2 * F.logsigmoid(-margin)).item()
    )


def test_ipo_is_the_squared_distance_of_the_log_ratio_margin_from_half_over_beta():
    zero = torch.zeros(1)
    loss, _ = dpo_loss(torch.tensor([2.0]), zero, zero, zero, beta=0.25, loss="ipo")
    assert loss.item() == pytest.approx((2.0 - 1 / (2 * 0.25)) ** 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": 0.0}, "beta"),
        ({"label_smoothing": 0.5}, "label_smoothing"),
        ({"loss": "ipo", "label_smoothing": 0.1}, "drop --label-smoothing"),
    ],
)
def test_bad_settings_say_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DPOConfig(**kwargs)


def test_dpo_steps_raise_the_chosen_answers_over_the_rejected(sft_model, tokenizer):
    reference = copy.deepcopy(sft_model)
    trainer = DPOTrainer(
        sft_model, tokenizer, RECORDS, DPOConfig(batch_size=8, num_epochs=6, learning_rate=1e-3)
    )
    assert torch.allclose(trainer.reference_logps, trainer.sequence_logps(reference, list(range(8))))
    first = trainer.train_iteration()
    assert first["lm/dpo_loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference
    while not trainer.done:
        last = trainer.train_iteration()
    assert last["lm/dpo_loss"] < first["lm/dpo_loss"] - 0.05 and last["lm/dpo_accuracy"] == 1.0
    assert last["lm/chosen_reward"] > last["lm/rejected_reward"]
    state = trainer.state_dict()
    again = DPOTrainer(
        copy.deepcopy(reference), tokenizer, RECORDS, DPOConfig(batch_size=8), reference=reference
    )
    again.load_state_dict(state)
    assert again.step == trainer.step


def test_comparisons_are_required(sft_model, tokenizer):
    with pytest.raises(ValueError, match="'chosen' and 'rejected'"):
        DPOTrainer(sft_model, tokenizer, [{"prompt": "a", "completions": ["b", "c"]}], DPOConfig())
