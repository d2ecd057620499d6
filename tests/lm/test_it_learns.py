"""The offline pipeline learns: the gold score of the policy's samples rises after PPO against a reward
model learned from synthetic labels; with the policy loss zeroed it does not (the check can fail).
SFT and the reward model are trained once for both tests."""

import copy
import dataclasses
import random

import pytest
import torch

import prefrl.lm.ppo_update as lm_ppo_update
from prefrl.lm import pipeline, tiny_task
from prefrl.lm.pipeline import PipelineConfig
from prefrl.lm.ppo import LMPPOConfig
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rm_training import RMConfig, RMTrainer, evaluate_rm
from prefrl.lm.sft import SFTConfig, SFTTrainer

CONFIG = PipelineConfig(
    num_demonstrations=1500,
    num_labels=400,
    sft=SFTConfig(num_epochs=2),
    rm=RMConfig(num_epochs=2),
    ppo=LMPPOConfig(num_iterations=20, batch_size=32, minibatch_size=8),
)


@pytest.fixture(scope="module")
def sft_and_rm():
    torch.manual_seed(0)
    tokenizer, model = pipeline.build(CONFIG)
    demos = tiny_task.sft_records(random.Random(1), CONFIG.num_demonstrations)
    sft = SFTTrainer(model, tokenizer, demos, CONFIG.sft)
    while not sft.done:
        sft.train_iteration()
    before = pipeline.evaluate_policy(model, tokenizer, CONFIG)["gold_score"]
    train, held_out = pipeline.label(pipeline.collect_pairs(model, tokenizer, CONFIG), CONFIG)
    rm = ScalarRewardModel.from_causal_lm(model)
    rm_trainer = RMTrainer(rm, tokenizer, train, CONFIG.rm)
    while not rm_trainer.done:
        rm_trainer.train_iteration()
    accuracy = evaluate_rm(rm, tokenizer, held_out)
    pipeline.shift_reward_model(rm, tokenizer, train)
    return tokenizer, model, rm, before, accuracy, train


def ppo_gold(sft_and_rm, ppo_config: LMPPOConfig | None = None) -> tuple[float, float]:
    """(gold before, gold after) PPO (or ``ppo_config``'s estimator) from a copy of the SFT policy."""
    tokenizer, model, rm, before, _, _ = sft_and_rm
    policy = copy.deepcopy(model)
    ppo = pipeline.make_ppo_trainer(policy, tokenizer, copy.deepcopy(rm), CONFIG, ppo_config)
    while not ppo.done:
        ppo.train_iteration()
    return before, pipeline.evaluate_policy(policy, tokenizer, CONFIG)["gold_score"]


@pytest.mark.slow
def test_gold_score_rises(sft_and_rm):
    accuracy = sft_and_rm[4]
    before, after = ppo_gold(sft_and_rm)
    print(f"gold {before:.2f} -> {after:.2f}, RM held-out accuracy {accuracy:.2f}")
    assert accuracy > 0.65, accuracy
    assert after > before + 0.3, (before, after)


@pytest.mark.slow
def test_gold_score_does_not_rise_when_learning_is_broken(sft_and_rm, monkeypatch):
    original = lm_ppo_update.policy_loss

    def zeroed(*args, **kwargs):
        loss, stats = original(*args, **kwargs)
        return loss * 0.0, stats

    monkeypatch.setattr(lm_ppo_update, "policy_loss", zeroed)
    before, after = ppo_gold(sft_and_rm)
    print(f"broken: gold {before:.2f} -> {after:.2f}")
    assert after < before + 0.15, (before, after)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["rloo", "grpo", "reinforce++"])
def test_critic_free_estimators_raise_the_gold_score(sft_and_rm, estimator):
    before, after = ppo_gold(sft_and_rm, dataclasses.replace(CONFIG.ppo, estimator=estimator))
    print(f"{estimator}: gold {before:.2f} -> {after:.2f}")
    assert after > before + 0.3, (before, after)


@pytest.mark.slow
def test_grpo_does_not_learn_when_its_advantages_are_broken(sft_and_rm, monkeypatch):
    from prefrl.lm import rollout

    original = rollout.estimate_advantages

    def shuffled(*args, **kwargs):  # each response gets another prompt's advantage: no signal left
        advantages, returns = original(*args, **kwargs)
        return advantages[torch.randperm(len(advantages))], returns

    monkeypatch.setattr(rollout, "estimate_advantages", shuffled)
    before, after = ppo_gold(sft_and_rm, dataclasses.replace(CONFIG.ppo, estimator="grpo"))
    print(f"grpo broken: gold {before:.2f} -> {after:.2f}")
    assert after < before + 0.15, (before, after)


@pytest.mark.slow
@pytest.mark.parametrize("broken", [False, True])
def test_dpo_raises_the_gold_score_from_the_same_labels(sft_and_rm, broken):
    from prefrl.lm import dpo

    tokenizer, model, _, before, _, train = sft_and_rm
    if broken:  # the preferences reversed: DPO must then not raise the gold score
        train = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in train]
    policy = copy.deepcopy(model)
    trainer = dpo.DPOTrainer(policy, tokenizer, train, dpo.DPOConfig())
    while not trainer.done:
        trainer.train_iteration()
    after = pipeline.evaluate_policy(policy, tokenizer, CONFIG)["gold_score"]
    print(f"dpo (reversed labels: {broken}): gold {before:.2f} -> {after:.2f}")
    assert (after < before + 0.15) if broken else (after > before + 0.3), (before, after)
