import pytest
import torch

from prefrl.lm.data import batch_from_tensors, encode, left_pad, make_batch
from prefrl.lm.generation import response_logprobs, sample, sample_with_logprobs


def test_sample_pads_after_eos_and_masks(sft_model, tokenizer):
    prompts = ["review of the soup :", "review of the cake :"] * 8
    p_ids, p_mask = left_pad(encode(tokenizer, prompts), tokenizer.pad_token_id)
    gen = torch.Generator().manual_seed(0)
    responses, mask = sample(
        sft_model, p_ids, p_mask, 24, tokenizer.eos_token_id, tokenizer.pad_token_id, 1.0, gen
    )
    assert responses.shape == mask.shape and responses.shape[0] == 16
    for row, m in zip(responses.tolist(), mask.tolist(), strict=True):
        n = sum(m)
        assert m == [True] * n + [False] * (len(m) - n)
        assert all(t == tokenizer.pad_token_id for t in row[n:])
        assert tokenizer.eos_token_id not in row[: n - 1]
    assert bool((responses == tokenizer.eos_token_id).any(1).all())  # SFT learned to stop


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_do_not_depend_on_padding_and_use_the_temperature(tiny_model, tokenizer, temperature):
    """The batched, left-padded log-probs equal those of each sequence alone, at the same temperature."""
    tiny_model.eval()
    prompts, responses = [[5, 6, 7, 8], [9]], [[10, 11, 1], [12, 1]]
    batched = response_logprobs(
        tiny_model, make_batch(prompts, responses, tokenizer.pad_token_id), temperature
    )
    for i in range(2):
        alone = response_logprobs(tiny_model, make_batch([prompts[i]], [responses[i]], 0), temperature)
        n = len(responses[i])
        assert torch.allclose(batched[i, :n], alone[0, :n], atol=1e-5)
        ids = torch.tensor([prompts[i] + responses[i]])
        logits = tiny_model(input_ids=ids).logits[0, len(prompts[i]) - 1 : -1].float() / temperature
        slow = [torch.log_softmax(logits[t], -1)[responses[i][t]].item() for t in range(n)]
        assert alone[0, :n].tolist() == pytest.approx(slow, abs=1e-5)
    assert batched.dtype == torch.float32


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_kv_cached_sampling_matches_full_forward(tiny_model, tokenizer, temperature):
    """The log-probs the cached loop drew each token with are those of one full forward over prompt +
    response (left padding, the temperature), and 0 after each response's end."""
    tiny_model.eval()
    p_ids, p_mask = left_pad([[5, 6, 7], [8], [9, 10]], tokenizer.pad_token_id)
    gen = torch.Generator().manual_seed(1)
    responses, mask, sampled = sample_with_logprobs(
        tiny_model, p_ids, p_mask, 6, tokenizer.eos_token_id, tokenizer.pad_token_id, temperature, gen
    )
    again, again_mask = sample(
        tiny_model, p_ids, p_mask, 6, tokenizer.eos_token_id, tokenizer.pad_token_id, temperature,
        torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert torch.equal(again, responses) and torch.equal(again_mask, mask)  # the same draws
    recomputed = response_logprobs(
        tiny_model, batch_from_tensors(p_ids, p_mask, responses, mask), temperature
    )
    assert sampled.dtype == torch.float32 and sampled.shape == responses.shape
    assert bool(torch.isfinite(recomputed[mask]).all()) and bool((sampled[mask] < 0).all())
    assert torch.allclose(sampled[mask], recomputed[mask], atol=1e-5)
    assert bool((sampled[~mask] == 0).all())
