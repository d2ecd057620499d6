import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.datatypes import ComparisonBatch
from prefrl.reward_model.ensemble import RewardModel, RewardModelConfig
from prefrl.reward_model.trainer import RewardModelTrainer, RewardTrainerConfig

OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACT = gym.spaces.Box(-1, 1, (2,), np.float32)


def true_reward(obs, actions):
    return obs[..., 0] - 0.5 * actions[..., 1]


def synthetic(n, seed, shuffle_labels=False):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(2, n, 10, 4, generator=g)
    act = torch.rand(2, n, 10, 2, generator=g) * 2 - 1
    r1, r2 = true_reward(obs[0], act[0]).sum(-1), true_reward(obs[1], act[1]).sum(-1)
    labels = (r1 > r2).float()
    if shuffle_labels:
        labels = labels[torch.randperm(n, generator=g)]
    return ComparisonBatch(obs[0], act[0], obs[1], act[1], labels), r1


def fit(data, epochs=60, **model_kw):
    torch.manual_seed(0)
    model = RewardModel(OBS, ACT, RewardModelConfig(**model_kw))
    trainer = RewardModelTrainer(
        model, RewardTrainerConfig(num_epochs=epochs), torch.Generator().manual_seed(0)
    )
    return model, trainer, trainer.fit(data)


def test_learns_the_true_reward_from_comparisons():
    data, _ = synthetic(400, seed=0)
    model, _, metrics = fit(data)
    assert metrics["reward_model/val_accuracy"] > 0.9
    test, true_returns = synthetic(300, seed=1)
    predicted = model.segment_returns(test.obs_1, test.actions_1).mean(0)
    corr = np.corrcoef(predicted.detach().numpy(), true_returns.numpy())[0, 1]
    assert corr > 0.95


def test_the_learning_check_fails_on_shuffled_labels():
    data, _ = synthetic(400, seed=0, shuffle_labels=True)
    _, _, metrics = fit(data)
    assert metrics["reward_model/val_accuracy"] < 0.65


@pytest.mark.parametrize("fraction", [0.1, 1 / math.e])
def test_validation_split_is_about_its_fraction_and_stable_as_data_grows(fraction):
    model = RewardModel(OBS, ACT, RewardModelConfig())
    config = RewardTrainerConfig(validation_fraction=fraction)
    trainer = RewardModelTrainer(model, config, torch.Generator().manual_seed(0))
    train, val = trainer.split(1000)
    assert abs(len(val) / 1000 - fraction) < 0.04 and len(train) + len(val) == 1000
    _, val_more = trainer.split(1500)
    assert set(val.tolist()) <= set(val_more.tolist())
    assert len(trainer.split(2)[0]) >= 1


def test_l2_moves_against_overfitting():
    data, _ = synthetic(30, seed=2)  # few comparisons: the members overfit
    model = RewardModel(OBS, ACT, RewardModelConfig(hidden_sizes=(256, 256)))
    trainer = RewardModelTrainer(model, RewardTrainerConfig(num_epochs=200), torch.Generator().manual_seed(0))
    trainer.fit(data)
    train_loss, _ = trainer.losses(data.index(trainer.split(30)[0]))
    val_loss, _ = trainer.losses(data.index(trainer.split(30)[1]))
    assert (val_loss / train_loss > 1.5).any()
    assert trainer.l2.max() > 1e-3


def test_the_adapted_l2_stops_at_its_cap():
    data, _ = synthetic(30, seed=2)  # as above: the L2 would rise past 1e-3
    model = RewardModel(OBS, ACT, RewardModelConfig(hidden_sizes=(256, 256)))
    config = RewardTrainerConfig(num_epochs=200, max_l2=1e-3)
    trainer = RewardModelTrainer(model, config, torch.Generator().manual_seed(0))
    for _ in range(3):
        trainer.fit(data)
        assert trainer.l2.max() <= 1e-3
    trainer._adapt_l2(torch.full((3,), 0.5))  # validation below training: it still comes down
    assert trainer.l2.max() < 1e-3


def test_the_l2_is_steered_by_at_most_max_evaluated_training_answers(monkeypatch):
    monkeypatch.setattr("prefrl.reward_model.trainer.MAX_EVALUATED", 40)
    data, _ = synthetic(300, seed=3)
    model = RewardModel(OBS, ACT, RewardModelConfig())
    trainer = RewardModelTrainer(model, RewardTrainerConfig(num_epochs=1), torch.Generator().manual_seed(0))
    sizes = []
    losses = trainer.losses
    monkeypatch.setattr(trainer, "losses", lambda batch: (sizes.append(len(batch)), losses(batch))[1])
    metrics = trainer.fit(data)
    train, val = trainer.split(300)
    assert sizes == [math.ceil(len(train) / math.ceil(len(train) / 40)), len(val)] and sizes[0] <= 40
    assert 0 < metrics["reward_model/train_loss"] < 1 and "reward_model/val_loss" in metrics


@pytest.mark.parametrize("inputs", ["obs_action", "obs"])
def test_normalised_reward_for_the_agent(inputs):
    model = RewardModel(OBS, gym.spaces.Discrete(3), RewardModelConfig(inputs=inputs, reward_std=0.5))
    obs, act = torch.randn(500, 4), torch.randint(0, 3, (500,))
    model.fit_normalization(obs, act)
    r = model(obs, act)
    assert r.shape == (500,) and abs(r.mean().item()) < 1e-4
    assert r.std().item() <= 0.5 + 1e-4  # the mean of members normalised to std 0.5


def test_a_capped_refit_stops_at_max_steps_and_warm_refits_keep_learning():
    data, _ = synthetic(400, seed=0)
    model = RewardModel(OBS, ACT, RewardModelConfig())
    config = RewardTrainerConfig(num_epochs=5, validation_fraction=1 / math.e)  # a large validation set
    trainer = RewardModelTrainer(model, config, torch.Generator().manual_seed(0))
    num_train = len(trainer.split(400)[0])
    assert trainer.fit(data)["reward_model/num_steps"] == 5 * -(-num_train // 64)  # uncapped: epochs
    assert trainer.fit(data, num_epochs=2)["reward_model/num_steps"] == 2 * -(-num_train // 64)
    accuracies = [trainer.fit(data, max_steps=7) for _ in range(15)]
    assert {m["reward_model/num_steps"] for m in accuracies} == {7.0}
    assert accuracies[-1]["reward_model/val_accuracy"] > max(0.9, accuracies[0]["reward_model/val_accuracy"])


def held_out_correlation(num_labels: int, seed: int, **trainer_overrides) -> float:
    """Correlation of the fitted ensemble's segment returns with the true ones on fresh segments."""
    data, _ = synthetic(num_labels, seed)
    torch.manual_seed(seed)
    model = RewardModel(OBS, ACT, RewardModelConfig())
    config = RewardTrainerConfig(num_epochs=200, **trainer_overrides)
    RewardModelTrainer(model, config, torch.Generator().manual_seed(seed)).fit(data)
    test, _ = synthetic(300, 100 + seed)
    predicted = model.segment_returns(test.obs_1, test.actions_1).mean(0).detach()
    return float(
        np.corrcoef(predicted.numpy(), true_reward(test.obs_1, test.actions_1).sum(-1).numpy())[0, 1]
    )


def test_the_defaults_learn_more_from_few_labels_than_the_papers_split_and_bagging():
    """Each member learns from every training answer and 10% are held out, where the paper bags
    (each member sees ~63%) and holds out 1/e: with 30 and 60 labels the learned reward ranks fresh
    segments better (0.94 against 0.91 mean correlation here; on Hopper-v5 with 700 labels it took
    the agent from 0.48 to 0.95 of PPO's return, benchmarks/RESULTS.md)."""
    runs = [(n, seed) for n in (30, 60) for seed in range(5)]
    ours = np.mean([held_out_correlation(n, seed) for n, seed in runs])
    papers = np.mean(
        [held_out_correlation(n, s, validation_fraction=1 / math.e, bootstrap=True) for n, s in runs]
    )
    assert ours > papers + 0.015, (ours, papers)


def test_a_mixed_precision_fit_learns_as_well_and_keeps_the_reward_in_float32():
    """bfloat16 hidden layers while fitting: the per-step reward, the segment sums and the losses
    stay float32 (a bf16 sum of 188 steps would blur the difference of two returns), and the fit
    ranks fresh segments as well as the float32 one."""
    model = RewardModel(OBS, ACT, RewardModelConfig())
    with torch.autocast("cpu", torch.bfloat16):
        assert model.net(torch.randn(7, 6)).dtype == torch.float32
    full = [held_out_correlation(60, seed) for seed in range(3)]
    mixed = [held_out_correlation(60, seed, mixed_precision=True) for seed in range(3)]
    assert min(mixed) > 0.85 and np.mean(mixed) > np.mean(full) - 0.02, (mixed, full)


def test_a_fit_runs_on_its_threads_and_gives_the_loop_back_its_own():
    """The loop's PPO runs on one thread; a refit takes ``num_threads`` (None: every core) and
    restores the threads it found."""
    seen = []
    data, _ = synthetic(50, seed=0)
    model = RewardModel(OBS, ACT, RewardModelConfig())
    trainer = RewardModelTrainer(model, RewardTrainerConfig(num_threads=2), torch.Generator().manual_seed(0))
    real_loss = trainer._loss
    trainer._loss = lambda mb: (seen.append(torch.get_num_threads()), real_loss(mb))[1]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer.fit(data, max_steps=2)
        assert seen == [2, 2] and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
