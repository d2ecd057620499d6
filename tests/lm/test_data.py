import json

import pytest
import torch

from prefrl.lm.data import check_lengths, check_tokenizer, left_pad, make_batch, position_ids
from prefrl.lm.records import load_records


def test_jsonl_list_and_hf_dataset_with_trl_columns(tmp_path):
    rows = [{"prompt": "review of the soup :", "chosen": "the soup was great .", "rejected": "bad ."}]
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_records(path, "preference") == rows
    assert load_records(rows, "preference") == rows
    import datasets

    dataset = datasets.Dataset.from_list(rows)
    assert load_records(dataset, "preference") == rows
    dataset.save_to_disk(str(tmp_path / "saved"))
    assert load_records(str(tmp_path / "saved"), "preference") == rows
    ranking = [{"prompt": "p", "completions": ["a", "b", "c"]}]
    assert load_records(ranking, "ranking") == ranking


@pytest.mark.parametrize(
    ("row", "kind", "message"),
    [
        ({"prompt": "p", "chosen": "a"}, "preference", "no 'rejected' column"),
        ({"prompt": "p", "completion": "  "}, "sft", "empty response"),
        ({"prompt": "", "completion": "a"}, "sft", "empty prompt"),
        ({"prompt": "p", "completions": ["a"]}, "ranking", ">= 2 answers"),
    ],
)
def test_bad_records_say_the_fix(row, kind, message):
    with pytest.raises(ValueError, match=message):
        load_records([row], kind)


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_records(tmp_path / "nope.jsonl", "sft")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(ValueError, match="line 1 is not JSON"):
        load_records(bad, "sft")


def test_tokenizer_checks(tokenizer):
    import copy

    no_eos = copy.deepcopy(tokenizer)
    no_eos.eos_token = None
    with pytest.raises(ValueError, match="no EOS token"):
        check_tokenizer(no_eos)
    pad_is_eos = copy.deepcopy(tokenizer)
    pad_is_eos.pad_token = pad_is_eos.eos_token
    with pytest.raises(ValueError, match="dedicated"):
        check_tokenizer(pad_is_eos)
    check_tokenizer(tokenizer)
    assert tokenizer.padding_side == "left" and tokenizer.pad_token_id != tokenizer.eos_token_id


def test_left_padded_prompts_then_right_padded_responses():
    batch = make_batch([[5, 6, 7], [8]], [[9, 1], [10, 11, 1]], pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 9, 1, 0], [0, 0, 8, 10, 11, 1]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 4, 4], [0, 0, 0, 1, 2, 3]]  # padding: any position
    assert batch.response_mask.tolist() == [[True, True, False], [True, True, True]]
    assert batch.prompt_length == 3
    _ids, mask = left_pad([[1], [2, 3]], 0)
    assert torch.equal(position_ids(mask), torch.tensor([[0, 0], [0, 1]]))


def test_prompt_longer_than_context():
    with pytest.raises(ValueError, match="exceeds the model's context of 64"):
        check_lengths([[1] * 50], 20, 64)


def test_batch_order_whole_batches_of_similar_length():
    import random

    from prefrl.lm.data import batch_order

    lengths = [random.Random(i).randint(1, 40) for i in range(103)]
    plain = batch_order(random.Random(0), lengths, 8, group_by_length=False)
    grouped = batch_order(random.Random(0), lengths, 8, group_by_length=True)
    assert len(plain) == len(grouped) == 96 and len(set(grouped)) == 96
    assert sorted(plain) == sorted(grouped)  # the same items, only batched differently

    def padding(order):
        batches = [order[i : i + 8] for i in range(0, len(order), 8)]
        return sum(max(lengths[i] for i in b) * 8 - sum(lengths[i] for i in b) for b in batches)

    assert padding(grouped) < padding(plain) / 2


def test_length_chunks_pad_the_least_possible():
    """The cut points minimise the padded total (chunk size x chunk maximum), checked against every
    possible cut of sorted lengths; each index appears once, in at most num_chunks chunks."""
    import itertools
    import random

    from prefrl.lm.data import length_chunks

    def padded(chunks, lengths):
        return sum(len(c) * max(lengths[j] for j in c) for c in chunks)

    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 6) for _ in range(rng.randint(1, 9))]
        num_chunks = rng.randint(1, 4)
        chunks = length_chunks(lengths, num_chunks)
        assert sorted(j for c in chunks for j in c) == list(range(len(lengths)))
        assert 1 <= len(chunks) <= num_chunks and all(chunks)
        ordered = sorted(lengths)
        best = min(
            padded([range(a, b) for a, b in itertools.pairwise([0, *cuts, len(ordered)])], ordered)
            for k in range(num_chunks)
            for cuts in itertools.combinations(range(1, len(ordered)), k)
        )
        assert padded(chunks, lengths) == best
    assert length_chunks([3, 1, 2], 1) == [[1, 2, 0]]


def test_stacked_batches_keep_each_rows_outputs(tiny_model):
    """PPO-ptx runs the policy once on the rollout and the demonstrations stacked: each row's
    response logits equal those of its own batch (different prompt and response widths)."""
    from prefrl.lm.data import stack_batches
    from prefrl.lm.generation import response_logits

    model = tiny_model.eval()
    first = make_batch([[5, 6, 7], [8]], [[9, 1], [10, 11, 12, 1]], pad_id=0)
    second = make_batch([[5, 6, 7, 8, 9, 10]], [[3, 1]], pad_id=0)
    stacked = response_logits(model, stack_batches(first, second))
    torch.testing.assert_close(stacked[:2, :4], response_logits(model, first), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stacked[2:, :2], response_logits(model, second), atol=1e-5, rtol=1e-5)
