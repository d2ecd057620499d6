"""Rewards per segment and per token, placed where each segment or token ends, through the trainer."""

import pytest
import torch

from prefrl.lm import tiny_task
from prefrl.lm.pipeline import gold_fn, segment_gold_fn
from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer
from prefrl.lm.scores import dense_scores

DOT, EOS, PAD = 9, 2, 0


def test_a_segments_score_goes_on_its_last_token_and_a_trailing_part_is_a_segment():
    responses = torch.tensor([[5, DOT, 6, 7, DOT, EOS, PAD], [5, DOT, 6, EOS, PAD, PAD, PAD]])
    mask = responses != PAD
    dense = dense_scores([[1.0, 2.0], [3.0, 4.0]], responses, mask, EOS, "segment", {DOT})
    assert dense.tolist() == [[0, 1, 0, 0, 2, 0, 0], [0, 3, 4, 0, 0, 0, 0]]
    tokens = dense_scores([[1, 2, 3, 4, 5], [1, 2, 3]], responses, mask, EOS, "token")
    assert tokens[0, :6].tolist() == [1, 2, 3, 4, 5, 0] and tokens[1, :4].tolist() == [1, 2, 3, 0]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([[1.0], [3.0, 4.0]], r"shape \(1,\) for 2 segments"),
        ([[1.0, 2.0]], "one list of floats per response"),
    ],
)
def test_the_wrong_number_of_scores_says_the_fix(raw, message):
    responses = torch.tensor([[5, DOT, 6, 7, DOT, EOS], [5, DOT, 6, EOS, PAD, PAD]])
    with pytest.raises(ValueError, match=message):
        dense_scores(raw, responses, responses != PAD, EOS, "segment", {DOT})


def test_segment_gold_sums_to_the_gold_score():
    for response in ("the soup was great . the staff was friendly .", "the soup was", "", "bad . bad . bad"):
        prompt = "review of the soup :"
        assert sum(tiny_task.segment_gold(prompt, response)) == pytest.approx(
            tiny_task.gold_score(prompt, response) if response else 0.0
        )


def test_the_trainer_pays_segment_rewards_that_sum_to_the_sequence_score(sft_model, tokenizer):
    prompts = ["review of the soup :", "review of the cake :"]
    config = LMPPOConfig(
        num_iterations=1, batch_size=8, minibatch_size=4, update_epochs=1, reward_level="segment"
    )
    trainer = LMPPOTrainer(sft_model, tokenizer, prompts, config, reward_fn=segment_gold_fn, gold_fn=gold_fn)
    rollout = trainer.rollout()
    # what the policy is paid in all equals the gold score of its answers (no EOS penalty: they end)
    assert rollout.metrics["lm/score"] == pytest.approx(rollout.metrics["lm/gold_score"], abs=1e-5)
    assert "lm/policy_loss" in trainer.train_iteration()
    with pytest.raises(ValueError, match="needs a reward function"):
        LMPPOTrainer(sft_model, tokenizer, prompts, config, reward_model=object())
