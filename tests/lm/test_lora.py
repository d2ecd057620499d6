"""LoRA through peft: only the adapters train, the reference is the model with its adapters off (no
copy), what is saved is a plain merged model, and bad targets say the fix."""

import copy
import random

import pytest
import torch

from prefrl.lm import tiny_task
from prefrl.lm.dpo import DPOConfig, DPOTrainer
from prefrl.lm.lora import AdaptersOff, LoRAConfig, apply_lora, layer_names, merged
from prefrl.lm.sft import SFTConfig, SFTTrainer

pytest.importorskip("peft")


def test_only_the_adapters_train_and_the_merged_model_is_plain(tiny_model, tokenizer):
    base = copy.deepcopy(tiny_model)
    model = apply_lora(tiny_model, LoRAConfig(rank=4))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < trainable < 0.05 * sum(p.numel() for p in model.parameters())
    records = tiny_task.sft_records(random.Random(0), 64)
    trainer = SFTTrainer(
        model, tokenizer, records, SFTConfig(batch_size=16, num_epochs=2, learning_rate=1e-2)
    )
    while not trainer.done:
        trainer.train_iteration()
    ids = torch.tensor([[5, 6, 7, 8]])
    model.eval(), base.eval()
    with torch.no_grad():
        off = AdaptersOff(model)(input_ids=ids).logits
        assert torch.allclose(off, base(input_ids=ids).logits, atol=1e-6)  # the frozen weights did not move
        on = model(input_ids=ids).logits
        assert not torch.allclose(on, off, atol=1e-4)  # the adapters learned
        plain = merged(model)
        assert type(plain).__name__ == "GPT2LMHeadModel" and torch.allclose(
            plain(input_ids=ids).logits, on, atol=1e-5
        )
    assert list(AdaptersOff(model).parameters()) == []  # freezing or moving it leaves the policy alone


def test_dpo_with_adapters_uses_the_model_itself_as_reference(sft_model, tokenizer):
    model = apply_lora(sft_model, LoRAConfig(rank=4))
    records = [{"prompt": "review of the soup :", "chosen": "the soup was great .", "rejected": "bad ."}] * 16
    trainer = DPOTrainer(model, tokenizer, records, DPOConfig(batch_size=8), reference=AdaptersOff(model))
    first = trainer.train_iteration()
    assert first["lm/dpo_loss"] == pytest.approx(0.6931, abs=1e-3)  # adapters start at zero
    while not trainer.done:
        trainer.train_iteration()
    assert trainer.accuracy(records) == 1.0


def test_bad_targets_say_which_layers_exist(tiny_model):
    assert "c_attn" in layer_names(tiny_model)
    with pytest.raises(ValueError, match=r"\['q_proj'\] are not layers of this model: pick from .*c_attn"):
        apply_lora(tiny_model, LoRAConfig(rank=4, target_modules=("q_proj",)))
    with pytest.raises(ValueError, match="lora rank must be >= 0"):
        LoRAConfig(rank=-1)
    assert apply_lora(tiny_model, LoRAConfig()) is tiny_model  # rank 0: no adapters
