"""`mixed_precision="bf16"`: the trainers' forward passes run under bf16 autocast (checked on the
matrix products' outputs), weights and scores stay fp32, SFT still learns, and PPO's rollout
log-probs agree with its first training forward (the ratio starts at 1)."""

import random

import pytest
import torch

from prefrl.lm import tiny_task
from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rm_training import RMConfig, RMTrainer
from prefrl.lm.sft import SFTConfig, SFTTrainer


def product_dtypes(model):
    """Record the output dtypes of the model's matrix products (GPT-2's Conv1D and Linear)."""
    seen = set()
    for module in model.modules():
        if type(module).__name__ in ("Conv1D", "Linear"):
            module.register_forward_hook(lambda m, i, out: seen.add(out.dtype))
    return seen


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_task.build_tokenizer()


def test_sft_in_bf16_autocast_learns_with_fp32_weights(tokenizer):
    torch.manual_seed(0)
    model = tiny_task.build_tiny_model(tokenizer, seed=0)
    seen = product_dtypes(model)
    demos = tiny_task.sft_records(random.Random(0), 256)
    trainer = SFTTrainer(
        model, tokenizer, demos, SFTConfig(batch_size=32, num_epochs=3), mixed_precision="bf16"
    )
    losses = [trainer.train_iteration()["lm/sft_loss"] for _ in range(20)]
    assert seen == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses


def test_reward_model_in_bf16_autocast_gives_fp32_scores(tokenizer):
    rm = ScalarRewardModel.from_causal_lm(tiny_task.build_tiny_model(tokenizer, seed=0))
    seen = product_dtypes(rm)
    demos = tiny_task.sft_records(random.Random(0), 16)
    prefs = [
        {"prompt": d["prompt"], "chosen": "the soup was great .", "rejected": d["completion"]} for d in demos
    ]
    trainer = RMTrainer(rm, tokenizer, prefs, RMConfig(batch_size=8), mixed_precision="bf16")
    metrics = trainer.train_iteration()
    assert seen == {torch.bfloat16} and torch.isfinite(torch.tensor(metrics["lm/rm_loss"]))
    with trainer.autocast():
        assert trainer.scores([0, 1]).dtype == torch.float32


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_ppo_rollout_and_first_training_forward_agree(tokenizer, precision):
    """One minibatch of the whole batch, one epoch: the training forward sees the rollout's weights,
    so approx-KL between them is rounding only (bf16 on different batch shapes: a little more)."""
    policy = tiny_task.build_tiny_model(tokenizer, seed=0)
    seen = product_dtypes(policy)
    prompts = tiny_task.sample_prompts(random.Random(1), 16)
    config = LMPPOConfig(batch_size=8, minibatch_size=8, update_epochs=1, max_new_tokens=8)

    def gold(ps, rs):
        return [tiny_task.gold_score(p, r) for p, r in zip(ps, rs, strict=True)]

    trainer = LMPPOTrainer(policy, tokenizer, prompts, config, reward_fn=gold, mixed_precision=precision)
    metrics = trainer.train_iteration()
    assert seen == ({torch.bfloat16} if precision == "bf16" else {torch.float32})
    assert abs(metrics["lm/approx_kl"]) < (1e-3 if precision == "bf16" else 1e-6), metrics["lm/approx_kl"]
    assert all(p.dtype == torch.float32 for p in policy.parameters())


def test_an_unknown_precision_is_refused_with_the_fix(tokenizer):
    model = tiny_task.build_tiny_model(tokenizer, seed=0)
    demos = tiny_task.sft_records(random.Random(0), 8)
    with pytest.raises(ValueError, match="use one of no, bf16"):
        SFTTrainer(model, tokenizer, demos, SFTConfig(batch_size=8), mixed_precision="fp16")


def test_deepspeed_runs_its_forward_in_bf16_with_fp32_gradient_reduction(tokenizer):
    """DeepSpeed switches an autocast opened outside its engine off inside it: bf16 must be in its
    config (torch_autocast), with no module whose gradients it would reduce in bf16."""
    from prefrl.lm.zero import engine_config

    model = tiny_task.build_tiny_model(tokenizer, seed=0)
    assert "torch_autocast" not in engine_config(model, 3, 2, 1.0)
    autocast = engine_config(model, 3, 2, 1.0, bf16=True)["torch_autocast"]
    assert autocast == {"enabled": True, "dtype": "bfloat16", "lower_precision_safe_modules": []}


def test_an_unknown_parallel_mode_is_refused_with_the_fix(tokenizer):
    from prefrl.lm import distributed

    model = tiny_task.build_tiny_model(tokenizer, seed=0)
    with pytest.raises(ValueError, match="use one of ddp, fsdp, zero1, zero2, zero3"):
        distributed.prepare(None, model, torch.optim.AdamW, parallel="zero4")
