import itertools

import pytest
import torch

from prefrl.lm.data import make_batch
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rm_training import RMConfig, RMTrainer, encode_rankings, evaluate_rm, kway_loss, pairwise_loss
from prefrl.reward_model.bradley_terry import bradley_terry_loss


def test_score_is_read_at_the_last_real_token(tiny_model):
    """Pins the score's position: batched and padded == the unpadded sequence's last-token output."""
    rm = ScalarRewardModel.from_causal_lm(tiny_model).eval()
    prompts, responses = [[5, 6, 7], [8]], [[9, 1], [10, 11, 12, 1]]
    batched = rm(make_batch(prompts, responses, pad_id=0))
    for i in range(2):
        ids = torch.tensor([prompts[i] + responses[i]])
        hidden = rm.backbone(input_ids=ids).last_hidden_state
        alone = rm.head(hidden[0, -1]).item()
        assert batched[i].item() == pytest.approx(alone, abs=1e-5)
        wrong = rm.head(hidden[0, -2]).item()  # the off-by-one reading
        assert batched[i].item() != pytest.approx(wrong, abs=1e-5)


def test_pairwise_loss_is_the_shared_bradley_terry_loss_with_margin():
    chosen, rejected = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.0, 0.5, 2.5])
    loss, stats = pairwise_loss(chosen, rejected, margin=0.3)
    shared, _ = bradley_terry_loss(chosen, rejected, torch.ones(3), margin=0.3)
    assert loss.item() == pytest.approx(shared.item())
    hand = -torch.nn.functional.logsigmoid(chosen - rejected - 0.3).mean()
    assert loss.item() == pytest.approx(hand.item())
    assert stats["accuracy"].item() == pytest.approx(1 / 3)


def test_kway_loss_averages_all_pairs_of_each_prompt():
    scores = torch.tensor([[3.0, 1.0, 2.0, 0.0], [0.0, 1.0, -1.0, 2.0]])
    loss, _ = kway_loss(scores)
    pairs = list(itertools.combinations(range(4), 2))
    hand = sum(
        -torch.nn.functional.logsigmoid(scores[b, i] - scores[b, j]) for b in range(2) for i, j in pairs
    )
    assert loss.item() == pytest.approx(hand.item() / (2 * len(pairs)), rel=1e-6)
    two, _ = kway_loss(scores[:, :2])
    assert two.item() == pytest.approx(pairwise_loss(scores[:, 0], scores[:, 1])[0].item())


def test_trains_shifts_and_round_trips(tiny_model, tokenizer, tmp_path):
    records = [
        {
            "prompt": "review of the soup :",
            "chosen": "the soup was great .",
            "rejected": "the soup was bad .",
        },
        {
            "prompt": "review of the cake :",
            "chosen": "the cake was lovely .",
            "rejected": "the cake was awful .",
        },
    ] * 16
    rm = ScalarRewardModel.from_causal_lm(tiny_model)
    trainer = RMTrainer(rm, tokenizer, records, RMConfig(num_epochs=4, batch_size=8, learning_rate=3e-3))
    while not trainer.done:
        metrics = trainer.train_iteration()
    assert metrics["lm/rm_accuracy"] == 1.0 and evaluate_rm(rm, tokenizer, records) == 1.0
    rm.eval()
    scores = trainer.scores(list(range(4)))[:, 0]
    rm.shift_to(scores)
    assert float(trainer.scores(list(range(4)))[:, 0].mean().detach()) == pytest.approx(0.0, abs=1e-5)
    rm.save(tmp_path / "rm")
    loaded = ScalarRewardModel.load(tmp_path / "rm").eval()
    batch = make_batch([[5, 6]], [[7, 1]], 0)
    assert loaded(batch).item() == pytest.approx(rm(batch).item(), abs=1e-5)


def test_kway_rankings_train(tiny_model, tokenizer):
    records = [{"prompt": "review of the soup :", "completions": ["great .", "okay .", "bad ."]}] * 8
    rm = ScalarRewardModel.from_causal_lm(tiny_model)
    trainer = RMTrainer(rm, tokenizer, records, RMConfig(num_epochs=6, batch_size=4, learning_rate=3e-3))
    while not trainer.done:
        trainer.train_iteration()
    assert evaluate_rm(rm, tokenizer, records) == 1.0


@pytest.mark.parametrize("length_chunks", [1, 2])
def test_shared_prompt_gives_the_full_sequences_scores_and_gradients(tiny_model, tokenizer, length_chunks):
    """Prompts forwarded once (KV cache reused by each answer) == each answer forwarded with its
    prompt: prompts of different lengths (left padding), answers of different lengths, K = 3."""
    records = [
        {"prompt": "review of the soup :", "completions": ["great soup .", "okay .", "the soup was bad ."]},
        {"prompt": "a short review of the spicy noodle soup :", "completions": ["bad .", "fine", "good"]},
        {"prompt": "review :", "completions": ["the cake was lovely and warm .", "meh", "awful cake ."]},
    ]
    rm = ScalarRewardModel.from_causal_lm(tiny_model)
    results = []
    for share in (True, False):
        config = RMConfig(batch_size=3, share_prompts=share, length_chunks=length_chunks)
        scores = RMTrainer(rm, tokenizer, records, config).scores([2, 0, 1])
        grads = torch.autograd.grad(scores.square().sum(), list(rm.parameters()))
        results.append((scores.detach(), grads))
    (shared, shared_grads), (full, full_grads) = results
    assert shared.shape == (3, 3)
    torch.testing.assert_close(shared, full, atol=1e-5, rtol=1e-5)
    for a, b in zip(shared_grads, full_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    plain = rm(encode_rankings(tokenizer, records, [2, 0, 1])).view(3, 3)  # an independent path
    torch.testing.assert_close(shared, plain.detach(), atol=1e-5, rtol=1e-5)


def test_comparison_longer_than_the_context_is_refused(tiny_model, tokenizer):
    records = [{"prompt": "review of the soup : " * 14, "chosen": "great .", "rejected": "bad ."}]
    with pytest.raises(ValueError, match="more than the model's context of 64: shorten"):
        RMTrainer(ScalarRewardModel.from_causal_lm(tiny_model), tokenizer, records, RMConfig(batch_size=1))
