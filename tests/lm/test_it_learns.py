"""The offline pipeline learns: the gold score of the policy's samples rises after PPO against a reward
model learned from synthetic labels; with the policy loss zeroed it does not (the check can fail)."""

import random

import pytest
import torch

import prefrl.lm.ppo as lm_ppo
from prefrl.lm import pipeline, tiny_task
from prefrl.lm.pipeline import PipelineConfig
from prefrl.lm.ppo import LMPPOConfig
from prefrl.lm.reward_model import RMConfig, RMTrainer, ScalarRewardModel, evaluate_rm
from prefrl.lm.sft import SFTConfig, SFTTrainer


def run_small_pipeline() -> tuple[float, float, float]:
    config = PipelineConfig(
        num_demonstrations=1500,
        num_labels=400,
        sft=SFTConfig(num_epochs=2),
        rm=RMConfig(num_epochs=2),
        ppo=LMPPOConfig(num_iterations=20, batch_size=32, minibatch_size=8),
    )
    tokenizer, model = pipeline.build(config)
    sft = SFTTrainer(
        model, tokenizer, tiny_task.sft_records(random.Random(1), config.num_demonstrations), config.sft
    )
    while not sft.done:
        sft.train_iteration()
    before = pipeline.evaluate_policy(model, tokenizer, config)["gold_score"]
    train, held_out = pipeline.label(pipeline.collect_pairs(model, tokenizer, config), config)
    rm = ScalarRewardModel.from_causal_lm(model)
    rm_trainer = RMTrainer(rm, tokenizer, train, config.rm)
    while not rm_trainer.done:
        rm_trainer.train_iteration()
    accuracy = evaluate_rm(rm, tokenizer, held_out)
    pipeline.shift_reward_model(rm, tokenizer, train)
    ppo = pipeline.make_ppo_trainer(model, tokenizer, rm, config)
    while not ppo.done:
        ppo.train_iteration()
    after = pipeline.evaluate_policy(model, tokenizer, config)["gold_score"]
    return before, after, accuracy


@pytest.mark.slow
def test_gold_score_rises():
    torch.manual_seed(0)
    before, after, accuracy = run_small_pipeline()
    print(f"gold {before:.2f} -> {after:.2f}, RM held-out accuracy {accuracy:.2f}")
    assert accuracy > 0.6, accuracy
    assert after > before + 0.3, (before, after)


@pytest.mark.slow
def test_gold_score_does_not_rise_when_learning_is_broken(monkeypatch):
    original = lm_ppo.policy_loss

    def zeroed(*args, **kwargs):
        loss, stats = original(*args, **kwargs)
        return loss * 0.0, stats

    monkeypatch.setattr(lm_ppo, "policy_loss", zeroed)
    before, after, _ = run_small_pipeline()
    print(f"broken: gold {before:.2f} -> {after:.2f}")
    assert after < before + 0.15, (before, after)
