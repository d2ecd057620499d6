import dataclasses
import math

import pytest
import torch

from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer
from prefrl.lm.scores import adaptive_kl_coef, check_scores
from prefrl.lm.sft import sft_loss
from prefrl.lm.tiny_task import gold_score

PROMPTS = ["review of the soup :", "review of the cake :", "review of the pizza :"]


def gold(prompts, responses):
    return [gold_score(p, r) for p, r in zip(prompts, responses, strict=True)]


def test_sft_loss_counts_response_tokens_only():
    logits = torch.randn(1, 3, 5, requires_grad=True)
    tokens = torch.tensor([[1, 2, 3]])
    mask = torch.tensor([[False, True, True]])
    loss = sft_loss(logits, tokens, mask)
    loss.backward()
    assert torch.equal(logits.grad[0, 0], torch.zeros(5))
    hand = -(torch.log_softmax(logits[0, 1], -1)[2] + torch.log_softmax(logits[0, 2], -1)[3]) / 2
    assert loss.item() == pytest.approx(hand.item(), rel=1e-6)


def test_adaptive_kl_hand_worked():
    assert adaptive_kl_coef(0.1, kl=12.0, target=6.0, horizon=10000, num=100) == pytest.approx(
        0.1 * (1 + 0.2 * 0.01)
    )
    assert adaptive_kl_coef(0.1, kl=5.4, target=6.0, horizon=10000, num=100) == pytest.approx(
        0.1 * (1 - 0.1 * 0.01)
    )


def test_reward_function_output_is_checked():
    with pytest.raises(ValueError, match="NaN"):
        check_scores([1.0, math.nan], 2)
    with pytest.raises(ValueError, match=r"shape \(3,\) for 2 responses"):
        check_scores([1.0, 2.0, 3.0], 2)
    with pytest.raises(ValueError, match="one float per response"):
        check_scores("abc", 2)


def test_first_rollout_has_zero_kl_and_logs_proxy_gold_kl(sft_model, tokenizer):
    config = LMPPOConfig(num_iterations=1, batch_size=8, minibatch_size=4, update_epochs=1)
    trainer = LMPPOTrainer(sft_model, tokenizer, PROMPTS, config, reward_fn=gold, gold_fn=gold)
    rollout = trainer.rollout()
    assert rollout.metrics["lm/kl"] == pytest.approx(0.0, abs=1e-4)  # policy == reference
    # the log-probs the sampling loop kept are those one more forward recomputes
    recompute = dataclasses.replace(config, recompute_logprobs=True)
    again = LMPPOTrainer(sft_model, tokenizer, PROMPTS, recompute, reward_fn=gold, gold_fn=gold).rollout()
    assert torch.equal(again.batch.input_ids, rollout.batch.input_ids)  # the same seed, the same samples
    assert again.metrics["lm/kl"] == 0.0  # the very forward the reference's log-probs come from
    real = rollout.batch.response_mask  # (past a response's end the recomputed ones are the pad's)
    assert torch.allclose(again.logprobs[real], rollout.logprobs[real], atol=1e-5)
    assert not torch.equal(again.logprobs, torch.zeros_like(again.logprobs))
    metrics = trainer.train_iteration()
    for key in (
        "lm/score",
        "lm/gold_score",
        "lm/kl",
        "lm/approx_kl",
        "lm/clip_frac",
        "lm/value_loss",
        "time/generate_s",
        "time/score_s",
        "time/update_s",
        "time/tokens_per_second",
    ):
        assert math.isfinite(metrics[key]), key
    assert metrics["lm/score"] == metrics["lm/gold_score"]
    assert trainer.done and trainer.global_step == 8


def test_bad_reward_function_is_refused(sft_model, tokenizer):
    config = LMPPOConfig(num_iterations=1, batch_size=4, minibatch_size=4)
    trainer = LMPPOTrainer(
        sft_model, tokenizer, PROMPTS, config, reward_fn=lambda p, r: [float("nan")] * len(r)
    )
    with pytest.raises(ValueError, match="NaN"):
        trainer.train_iteration()
    trainer = LMPPOTrainer(sft_model, tokenizer, PROMPTS, config, reward_fn=lambda p, r: [0.0])
    with pytest.raises(ValueError, match="shape"):
        trainer.train_iteration()


def test_eos_penalty_reaches_unfinished_responses(sft_model, tokenizer):
    config = LMPPOConfig(batch_size=8, minibatch_size=8, max_new_tokens=2, eos_penalty=-5.0, kl_coef=0.0)
    trainer = LMPPOTrainer(sft_model, tokenizer, PROMPTS, config, reward_fn=lambda p, r: [0.0] * len(r))
    rollout = trainer.rollout()
    assert rollout.metrics["lm/eos_rate"] < 1.0
    assert float(rollout.returns[:, 0].min()) < -4.0  # gamma 1: the penalty flows back to token 0


def test_ptx_and_adaptive_kl_run(sft_model, tokenizer):
    demos = [{"prompt": p, "completion": "the soup was great ."} for p in PROMPTS]
    config = LMPPOConfig(
        num_iterations=1,
        batch_size=4,
        minibatch_size=2,
        update_epochs=1,
        ptx_coef=1.0,
        adaptive_kl=True,
        whiten_rewards=True,
        target_kl=0.0,
    )
    trainer = LMPPOTrainer(sft_model, tokenizer, PROMPTS, config, reward_fn=gold, ptx_records=demos)
    metrics = trainer.train_iteration()
    assert math.isfinite(metrics["lm/ptx_loss"]) and metrics["lm/kl_coef"] == config.kl_coef
    assert trainer.kl_coef < config.kl_coef  # KL 0 < target: the controller lowers the coefficient


def test_critic_from_a_frozen_reward_model_still_learns_and_the_rm_does_not(sft_model, tokenizer):
    from prefrl.lm.reward_model import ScalarRewardModel

    rm = ScalarRewardModel.from_causal_lm(sft_model).requires_grad_(False)  # e.g. used by a trainer before
    config = LMPPOConfig(num_iterations=1, batch_size=4, minibatch_size=4, update_epochs=1)
    trainer = LMPPOTrainer(sft_model, tokenizer, PROMPTS, config, reward_model=rm)
    critic_before = trainer.critic.head.weight.clone()
    rm_before = rm.head.weight.clone()
    trainer.train_iteration()
    assert not torch.equal(trainer.critic.head.weight, critic_before)
    assert torch.equal(rm.head.weight, rm_before)


def test_batches_that_do_not_split_over_the_processes_are_refused(sft_model, tokenizer):
    class TwoProcesses:  # what LMPPOTrainer reads of an accelerate.Accelerator before using it
        process_index, num_processes = 0, 2

    config = LMPPOConfig(num_iterations=1, batch_size=6, minibatch_size=3)
    with pytest.raises(ValueError, match="must split over 2 processes: make both multiples of 2"):
        LMPPOTrainer(sft_model, tokenizer, PROMPTS, config, reward_fn=gold, accelerator=TwoProcesses())


@pytest.mark.parametrize("estimator", ["rloo", "grpo", "reinforce++"])
def test_critic_free_estimators_train_without_a_critic_and_resume(sft_model, tokenizer, estimator):
    config = LMPPOConfig(
        estimator=estimator, num_iterations=2, batch_size=8, minibatch_size=4, update_epochs=1, group_size=4
    )
    trainer = LMPPOTrainer(sft_model, tokenizer, PROMPTS, config, reward_fn=gold, gold_fn=gold)
    assert trainer.critic is None
    rollout = trainer.rollout()
    prompts = trainer.decode(
        rollout.batch.input_ids[:, : rollout.batch.prompt_length],
        rollout.batch.attention_mask[:, : rollout.batch.prompt_length],
    )
    if estimator != "reinforce++":  # each prompt sampled group_size times in a row
        assert all(len(set(prompts[i : i + 4])) == 1 for i in range(0, 8, 4))
    metrics = trainer.train_iteration()
    assert "lm/value_loss" not in metrics and math.isfinite(metrics["lm/policy_loss"])
    assert ("lm/kl_loss" in metrics) == (estimator == "grpo")
    state = trainer.state_dict()
    assert "critic" not in state
    again = LMPPOTrainer(sft_model, tokenizer, PROMPTS, config, reward_fn=gold)
    again.load_state_dict(state)
    assert again.iteration == 1
