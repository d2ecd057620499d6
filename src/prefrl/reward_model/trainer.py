"""Fitting the reward-model ensemble to comparisons and ratings: a held-out validation split (10% of
the comparisons; the paper's 1/e and its bootstrap resamples per member for ratings, and switches),
and an L2 weight adapted to keep validation loss within 1.1x-1.5x training loss."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from prefrl.datatypes import ComparisonBatch, RatingBatch
from prefrl.reward_model.bradley_terry import bradley_terry_loss
from prefrl.reward_model.ensemble import RewardModel
from prefrl.reward_model.ratings import rating_loss
from prefrl.validation import require, require_positive, validation_enabled


@dataclass(frozen=True)
class RewardTrainerConfig:
    learning_rate: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 64
    """Comparisons per minibatch (per member)."""
    num_epochs: int = 10
    """Passes over the (bootstrapped) training comparisons per refit."""
    initial_num_epochs: int = 200
    """Passes in the first fit, on the initial policy's labels before RL starts (the paper
    pre-trains for 200 epochs; 10 passes over a few dozen comparisons are only a few Adam steps)."""
    max_steps_per_refit: int | None = 32
    """Cap on gradient steps per refit during training (the first fit is never capped; the model is
    warm-started), so that a refit's cost stays flat as comparisons accumulate (binding from ~300
    labels). None: num_epochs every refit, the paper's choice. On Pendulum-v1 with 700 labels (5 seeds)
    the cap of 32 left the returns as they were (evaluation median -184, worst -205; uncapped -177,
    -187) and cut the refit time about fourfold; 16 (with 100 first epochs) held on Pendulum but took
    Hopper-v5's seed 1 from 2293 to 881, and 8 broke two Pendulum seeds of five (benchmarks/RESULTS.md)."""
    validation_fraction: float | None = None
    """Share of answers held out for validation (they only steer the adaptive L2). None: 0.1 of the
    comparisons, 1/e of the ratings. The paper holds out 1/e; with 700 labels that leaves 440 to learn
    from, and on Hopper-v5 (700 labels, 3 seeds, with ``bootstrap`` off) 0.1 took the agent from 0.48
    to 0.95 of PPO's median return; ratings did better with the paper's (benchmarks/RESULTS.md)."""
    bootstrap: bool | None = None
    """Train each member on its own resample (with replacement) of the training answers (the
    paper's bagging: each member sees ~63% of them). None: off for comparisons, on for ratings. Off:
    every member learns from every training answer and the members differ by their initialisation
    and minibatch order, which keeps enough disagreement for active selection; on Hopper-v5 with 700
    labels off raised the median from 0.67 to 0.95 of PPO's return (validation 0.1 in both); on
    Pendulum with 400 ratings the worst of 5 seeds fell from -240 to -825 without the paper's fit."""
    initial_l2: float = 1e-3
    """Starting L2 coefficient on each member's weights."""
    adapt_l2: bool = True
    """Adapt L2 so that validation loss stays between l2_band[0] and l2_band[1] x training loss."""
    l2_band: tuple[float, float] = (1.1, 1.5)
    """Target range of validation loss / training loss."""
    l2_step: float = 1.5
    """Factor by which L2 moves when the ratio leaves the band."""
    max_l2: float | None = None
    """Upper bound of the adapted L2 (None: unbounded, the paper). With a noiseless labeller the
    validation loss stays well above the training loss, and the unbounded L2 grew to 0.15-0.28 on
    Swimmer-v5 and HalfCheetah-v5; a cap of 1e-3 changed which Swimmer seeds got stuck in its local
    optimum, not how many (4 of 8 either way; benchmarks/RESULTS.md)."""
    mixed_precision: bool = False
    """Fit with the hidden layers in bfloat16 (``torch.autocast``; the weights, the per-step reward,
    the sums over segments and the losses stay float32). 2-2.4x faster refit steps on a CPU with
    native bf16 (AVX512-BF16) for 25-188-step segments; off by default: on Hopper-v5 with 700 labels
    every seed's return came out lower (median 0.88 of PPO against 0.95; benchmarks/RESULTS.md)."""
    num_threads: int | None = None
    """Torch threads while fitting (None: one per core). The loop's PPO runs on one thread, so the
    other cores would sit idle during a refit: on Pendulum-v1 with 700 labels two threads cut the
    refits from 34 to 27 s of a 77 s run, same returns (benchmarks/RESULTS.md). Pass 1 when runs
    share the cores. A fit in the refit process (``--async-refit``) runs on one thread, beside PPO's."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        for name in ("learning_rate", "batch_size", "num_epochs", "initial_num_epochs"):
            require_positive(name, getattr(self, name))
        require(self.max_l2 is None or self.max_l2 >= 0, f"max_l2 must be >= 0, got {self.max_l2}")
        if self.num_threads is not None:
            require_positive("num_threads", self.num_threads)
        if self.max_steps_per_refit is not None:
            require_positive("max_steps_per_refit", self.max_steps_per_refit)
        fraction = self.validation_fraction
        require(fraction is None or 0.0 <= fraction < 1.0, "validation_fraction must be in [0, 1)")
        require(self.initial_l2 >= 0, f"initial_l2 must be >= 0, got {self.initial_l2}")
        require(
            1.0 <= self.l2_band[0] <= self.l2_band[1], f"l2_band must be 1 <= low <= high, got {self.l2_band}"
        )
        require(self.l2_step > 1.0, f"l2_step must be > 1, got {self.l2_step}")


MAX_EVALUATED = 256
"""Training answers whose loss steers the L2 after a refit: every k-th of them, so that at most this
many are evaluated (at 700 labels the evaluation of all of them was an eighth of the refit time)."""

KIND_DEFAULTS = {"comparisons": (0.1, False), "ratings": (1.0 / math.e, True)}
"""(validation fraction, bootstrap) by kind of answer when the config leaves them None."""


class RewardModelTrainer:
    """``fit(all comparisons so far, all ratings so far) -> metrics``. Answers must keep their order
    between calls: answer i is in the validation split for good once drawn there (no leak across
    refits)."""

    def __init__(self, model: RewardModel, config: RewardTrainerConfig, generator: torch.Generator) -> None:
        self.model = model
        self.config = config
        self.generator = generator
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        self.l2 = torch.full((model.config.num_members,), config.initial_l2)
        self._split_draws = {"comparisons": torch.empty(0), "ratings": torch.empty(0)}

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "l2": self.l2.clone(),
            "split_draws": self._split_draws["comparisons"].clone(),
            "rating_split_draws": self._split_draws["ratings"].clone(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.l2 = state["l2"].clone()
        self._split_draws["comparisons"] = state["split_draws"].clone()
        self._split_draws["ratings"] = state.get("rating_split_draws", torch.empty(0)).clone()
        self.generator.set_state(state["generator"])

    def split(self, n: int, kind: str = "comparisons") -> tuple[torch.Tensor, torch.Tensor]:
        """Indices (train, validation) of n answers of ``kind`` (comparisons or ratings); earlier
        answers keep their side."""
        draws = self._split_draws[kind]
        if n > len(draws):
            extra = torch.rand(n - len(draws), generator=self.generator)
            draws = self._split_draws[kind] = torch.cat([draws, extra])
        is_val = draws[:n] < self.fit_settings(kind)[0]
        if n >= 2 and is_val.all():
            is_val[0] = False
        idx = torch.arange(n)
        return idx[~is_val], idx[is_val]

    def fit(
        self,
        data: ComparisonBatch | None,
        max_steps: int | None = None,
        num_epochs: int | None = None,
        ratings: RatingBatch | None = None,
    ) -> dict[str, float]:
        """Train every member on its bootstrap sample of the comparisons and of the ratings (either
        may be None) for ``num_epochs`` of the larger (the config's by default; at most
        ``max_steps`` minibatch steps, each a minibatch of both), then adapt L2."""
        with torch_threads(self.config.num_threads):
            return self._fit(data, max_steps, num_epochs, ratings)

    def refit(
        self,
        data: ComparisonBatch | None,
        max_steps: int | None,
        num_epochs: int | None,
        ratings: RatingBatch | None,
        steps: tuple[torch.Tensor, torch.Tensor],
    ) -> dict[str, float]:
        """:meth:`fit`, then renormalise the model's reward on ``steps`` ((N, obs), (N, act)): what
        the preference loop does with new answers, in line or in the refit process."""
        metrics = self.fit(data, max_steps, num_epochs, ratings)
        self.model.fit_normalization(*steps)
        return metrics

    def _fit(
        self,
        data: ComparisonBatch | None,
        max_steps: int | None,
        num_epochs: int | None,
        ratings: RatingBatch | None,
    ) -> dict[str, float]:
        cfg = self.config
        parts = {
            kind: (batch, *self.split(len(batch), kind))
            for kind, batch in (("comparisons", data), ("ratings", ratings))
            if batch is not None and len(batch) > 0
        }
        counts = {"reward_model/num_comparisons": float(len(data) if data is not None else 0)}
        if ratings is not None:
            counts["reward_model/num_ratings"] = float(len(ratings))
        sizes = {kind: len(train) for kind, (_, train, _) in parts.items() if len(train) > 0}
        if not sizes:
            return counts
        epoch_steps = {kind: math.ceil(n / cfg.batch_size) for kind, n in sizes.items()}
        num_steps = (num_epochs or cfg.num_epochs) * max(epoch_steps.values())
        num_steps = num_steps if max_steps is None else min(num_steps, max_steps)
        samples = {kind: self._bootstrap(parts[kind][1], kind) for kind in sizes}
        shuffled: dict[str, torch.Tensor] = {}
        device = next(self.model.parameters()).device.type
        self.model.train()
        for step in range(num_steps):
            losses = []
            for kind, sample in samples.items():
                position = step % epoch_steps[kind]
                if position == 0:
                    order = torch.rand(sample.shape, generator=self.generator).argsort(dim=1)
                    shuffled[kind] = sample.gather(1, order)
                idx = shuffled[kind][:, position * cfg.batch_size : (position + 1) * cfg.batch_size]
                with torch.autocast(device, torch.bfloat16, enabled=cfg.mixed_precision):
                    losses.append(self._loss(parts[kind][0].index(idx))[0])
            loss = sum(losses[1:], losses[0]) + (self.l2 * self.model.net.weight_norms()).sum()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.model.eval()
        metrics = {**counts, **self._evaluate(parts), "reward_model/num_steps": float(num_steps)}
        return metrics

    def fit_settings(self, kind: str) -> tuple[float, bool]:
        """(validation fraction, bootstrap) for answers of ``kind``: the config's, else the kind's
        default (comparisons: 0.1 and no bagging; ratings: the paper's 1/e and bagging)."""
        fraction, bootstrap = KIND_DEFAULTS[kind]
        cfg = self.config
        return (
            fraction if cfg.validation_fraction is None else cfg.validation_fraction,
            bootstrap if cfg.bootstrap is None else cfg.bootstrap,
        )

    def _bootstrap(self, train_idx: torch.Tensor, kind: str) -> torch.Tensor:
        """(E, n) each member's training answers: a resample with replacement, or all of them."""
        e, n = self.model.config.num_members, len(train_idx)
        if self.fit_settings(kind)[1]:
            return train_idx[torch.randint(n, (e, n), generator=self.generator)]
        return train_idx.expand(e, n)

    def _loss(self, mb: ComparisonBatch | RatingBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of a (per-member) minibatch of comparisons (Bradley-Terry) or ratings."""
        model = self.model
        if isinstance(mb, RatingBatch):
            returns = model.per_member_segment_returns(mb.obs, mb.actions, mb.mask)
            cfg = model.config
            return rating_loss(returns, mb.ratings, cfg.rating_classes, cfg.rating_sharpness)
        r1 = model.per_member_segment_returns(mb.obs_1, mb.actions_1, mb.mask_1)
        r2 = model.per_member_segment_returns(mb.obs_2, mb.actions_2, mb.mask_2)
        return bradley_terry_loss(r1, r2, mb.labels, noise=model.config.noise)

    @torch.no_grad()
    def losses(self, data: ComparisonBatch | RatingBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(E,) loss per member and (E,) accuracy per member on ``data`` (comparisons: the share of
        clear labels ranked right; ratings: the share of segments put in the rated class)."""
        if isinstance(data, RatingBatch):
            returns = self.model.segment_returns(data.obs, data.actions, data.mask)
            cfg = self.model.config
            _, stats = rating_loss(returns, data.ratings, cfg.rating_classes, cfg.rating_sharpness)
            return stats["loss_per_member"], stats["accuracy_per_member"]
        r1 = self.model.segment_returns(data.obs_1, data.actions_1, data.mask_1)
        r2 = self.model.segment_returns(data.obs_2, data.actions_2, data.mask_2)
        _, stats = bradley_terry_loss(r1, r2, data.labels, noise=self.model.config.noise)
        return stats["loss_per_member"], _accuracy(r1, r2, data.labels)

    def _evaluate(self, parts: dict[str, tuple[Any, torch.Tensor, torch.Tensor]]) -> dict[str, float]:
        """Training (at most ``MAX_EVALUATED`` of them, evenly spaced) and validation loss and accuracy
        of each kind of answer; L2 adapted to the ratio of the summed validation and training losses."""
        metrics, train_total, val_total = {}, torch.zeros(()), torch.zeros(())
        for kind, (batch, train_idx, val_idx) in parts.items():
            prefix = "reward_model/" + ("" if kind == "comparisons" else "rating_")
            stride = max(1, math.ceil(len(train_idx) / MAX_EVALUATED))
            for split, idx in (("train", train_idx[::stride]), ("val", val_idx)):
                if len(idx) == 0:
                    continue
                loss, accuracy = self.losses(batch.index(idx))
                metrics[f"{prefix}{split}_loss"] = float(loss.mean())
                metrics[f"{prefix}{split}_accuracy"] = float(accuracy.mean())
                if split == "train":
                    train_total = train_total + loss
                elif len(train_idx) > 0:
                    val_total = val_total + loss
        if self.config.adapt_l2 and bool((val_total > 0).all()):
            self._adapt_l2(val_total / train_total.clamp_min(1e-8))
        metrics["reward_model/l2"] = float(self.l2.mean())
        return metrics

    def _adapt_l2(self, ratio: torch.Tensor) -> None:
        low, high = self.config.l2_band
        step = self.config.l2_step
        self.l2 = torch.where(ratio > high, self.l2 * step, torch.where(ratio < low, self.l2 / step, self.l2))
        if self.config.max_l2 is not None:
            self.l2 = self.l2.clamp_max(self.config.max_l2)


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run torch with ``num_threads`` intra-op threads (None: one per core) inside the block, then go
    back to the threads before."""
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads or os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _accuracy(r1: torch.Tensor, r2: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(E,) share of clear labels (0 or 1) whose preferred segment each member ranks higher."""
    clear = labels != 0.5
    right = (r1 > r2) == (labels > 0.5)
    return (right & clear).float().sum(-1) / clear.sum().clamp_min(1)
