import torch

from prefrl.masked import last_valid_index, masked_mean, masked_var, masked_whiten


def test_masked_reductions_ignore_masked_entries():
    x = torch.tensor([1.0, 2.0, 3.0, 100.0])
    mask = torch.tensor([True, True, True, False])
    assert masked_mean(x, mask).item() == 2.0
    assert masked_var(x, mask).item() == 1.0  # unbiased variance of 1, 2, 3
    w = masked_whiten(x, mask)
    assert w[3].item() == 0.0 and abs(w[:3].mean().item()) < 1e-6


def test_last_valid_index():
    mask = torch.tensor([[True, True, False, False], [True, True, True, True], [False] * 4])
    assert last_valid_index(mask).tolist() == [1, 3, -1]
