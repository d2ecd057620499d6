"""The rating likelihood (rating-based RL) and a reward model fitted to ratings."""

import numpy as np
import pytest
import torch

from prefrl.datatypes import RatingBatch
from prefrl.preferences.labellers import synthetic_ratings
from prefrl.reward_model.ensemble import RewardModel, RewardModelConfig
from prefrl.reward_model.ratings import class_boundaries, normalised_returns, rating_loss
from prefrl.reward_model.trainer import RewardModelTrainer, RewardTrainerConfig

from .test_trainer import ACT, OBS, synthetic, true_reward


def test_boundaries_put_as_many_segments_in_each_class_as_were_rated_in_it():
    returns = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0]])
    ratings = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2, 2])  # 2, 3, 5 segments
    norm = normalised_returns(returns)
    assert norm.min() == 0 and norm.max() == 1
    bounds = class_boundaries(norm, ratings, 3)
    assert bounds.shape == (1, 4) and bounds[0, 0] == 0 and bounds[0, -1] == 1
    assert torch.allclose(bounds[0, 1:3], torch.tensor([0.15, 0.45]))  # between 1|2 and 4|5 of 10
    ranges = zip(bounds[0, :-1], bounds[0, 1:], strict=True)
    inside = [((norm[0] >= lo) & (norm[0] <= hi)).sum().item() for lo, hi in ranges]
    assert inside == [2, 3, 5]
    empty = class_boundaries(norm, torch.zeros(10, dtype=torch.int64), 3)  # no one rated 1 or 2
    assert torch.allclose(empty[0], torch.tensor([0.0, 1.0, 1.0, 1.0]))


def test_loss_is_low_when_returns_follow_the_ratings_and_high_when_reversed():
    ratings = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    ordered = torch.arange(10.0)
    right, stats = rating_loss(ordered, ratings, 5, 30.0)
    wrong, _ = rating_loss(-ordered, ratings, 5, 30.0)
    assert stats["accuracy"] == 1.0 and right < 0.5 < wrong
    _, stats = rating_loss(torch.stack([ordered, -ordered]), ratings, 5, 30.0)
    assert stats["loss_per_member"].shape == (2,) and stats["accuracy_per_member"].tolist()[0] == 1.0


def rated(n, seed, shuffle=False, num_classes=5):
    """n random segments of the test's linear true reward, rated on a scale of num_classes."""
    data, _ = synthetic(n, seed)
    returns = true_reward(data.obs_1, data.actions_1).sum(-1)
    ratings = synthetic_ratings(returns.numpy(), float(returns.min()), float(returns.max()), num_classes)
    classes = torch.from_numpy(ratings)
    if shuffle:
        classes = classes[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
    return RatingBatch(data.obs_1, data.actions_1, classes), returns


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_reward_model_learns_the_true_reward_from_ratings_and_not_from_shuffled_ones(shuffle):
    data, _ = rated(400, seed=0, shuffle=shuffle)
    torch.manual_seed(0)
    model = RewardModel(OBS, ACT, RewardModelConfig())
    trainer = RewardModelTrainer(model, RewardTrainerConfig(num_epochs=60), torch.Generator().manual_seed(0))
    metrics = trainer.fit(None, ratings=data)
    assert metrics["reward_model/num_ratings"] == 400 and metrics["reward_model/num_comparisons"] == 0
    test, returns = rated(300, seed=1)
    predicted = model.segment_returns(test.obs, test.actions).mean(0).detach()
    corr = float(np.corrcoef(predicted.numpy(), returns.numpy())[0, 1])
    if shuffle:
        assert corr < 0.6 and metrics["reward_model/rating_val_accuracy"] < 0.45  # chance: ~0.2
    else:
        assert corr > 0.9 and metrics["reward_model/rating_val_accuracy"] > 0.6


def test_comparisons_and_ratings_are_fitted_together():
    comparisons, _ = synthetic(200, seed=0)
    ratings, _ = rated(200, seed=2)
    torch.manual_seed(0)
    model = RewardModel(OBS, ACT, RewardModelConfig(num_members=2))
    trainer = RewardModelTrainer(model, RewardTrainerConfig(num_epochs=30), torch.Generator().manual_seed(0))
    metrics = trainer.fit(comparisons, ratings=ratings)
    for key in ("val_accuracy", "rating_val_accuracy", "train_loss", "rating_train_loss"):
        assert f"reward_model/{key}" in metrics
    assert metrics["reward_model/val_accuracy"] > 0.85 and metrics["reward_model/rating_val_accuracy"] > 0.5
    assert metrics["reward_model/num_steps"] == 30 * -(-len(trainer.split(200)[0]) // 64)
    state = trainer.state_dict()  # the ratings' validation split survives a resume
    again = RewardModelTrainer(model, RewardTrainerConfig(), torch.Generator())
    again.load_state_dict(state)
    assert torch.equal(again.split(200, "ratings")[1], trainer.split(200, "ratings")[1])


def test_ratings_keep_the_papers_split_and_bagging_unless_told_otherwise():
    model = RewardModel(OBS, ACT, RewardModelConfig())
    trainer = RewardModelTrainer(model, RewardTrainerConfig(), torch.Generator().manual_seed(0))
    assert trainer.fit_settings("comparisons") == (0.1, False)
    assert trainer.fit_settings("ratings") == (pytest.approx(0.3679, abs=1e-4), True)
    told = RewardModelTrainer(
        model, RewardTrainerConfig(validation_fraction=0.2, bootstrap=False), torch.Generator()
    )
    assert told.fit_settings("ratings") == (0.2, False) and told.fit_settings("comparisons") == (0.2, False)
    assert 0.3 < len(trainer.split(1000, "ratings")[1]) / 1000 < 0.45 and len(trainer.split(1000)[1]) < 150
