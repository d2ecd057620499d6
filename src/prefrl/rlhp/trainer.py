"""Deep RL from human preferences (Christiano et al. 2017), written as the paper's named steps:
collect -> cut segments -> ask queries -> answers -> fit reward model -> pay -> PPO update.

There is one path for every labeller. Queries go into the preference store; whoever answers puts the
answers there: a synthetic labeller (or a judge) at once, people later, in the labelling app, while
training goes on. The reward model is refitted whenever the store's answers changed."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from prefrl.datatypes import Rollout, Segment
from prefrl.envs.render_state import CLIP_FRAMES
from prefrl.ppo.trainer import PPOTrainer
from prefrl.preferences.asking import Query, answer_now, select_queries, store_queries
from prefrl.preferences.labellers import Labeller, check_labeller
from prefrl.preferences.pool import ComparisonCache, SegmentPool
from prefrl.preferences.query_selection import DisagreementSelector, QuerySelector, RandomSelector
from prefrl.preferences.schedule import labels_due
from prefrl.preferences.segments import cut_segments, default_segment_length
from prefrl.preferences.store import PreferenceStore
from prefrl.reward_model.ensemble import RewardModel
from prefrl.reward_model.monitor import HackingMonitor, segment_diagnostics, without_true_reward
from prefrl.reward_model.refit_process import FitArgs, RefitProcess
from prefrl.reward_model.trainer import RewardModelTrainer
from prefrl.rlhp.config import RLHPConfig

log = logging.getLogger(__name__)

TRAINING_STATUS_KEY = "training_status"
"""Store meta key: :meth:`RLHPTrainer.training_status` as JSON, updated every iteration people label."""

REFERENCE_SEGMENTS = 200
"""Segments first labelled (the initial policy's) that the hacking monitor measures improvement from."""

MAX_PRETRAIN_ROLLOUTS = 100
"""Rollouts of the initial policy to fill the segment pool before giving up."""


class RLHPTrainer:
    """The loop. Queries and answers all go through ``store``; ``labeller`` answers each query when
    it is asked (its ``max_pending`` is None), or people do in the labelling app (``max_pending``: the
    queries kept waiting for them). Neither logs nor writes files: ``state_dict`` is the checkpoint
    (the answers live in the store)."""

    def __init__(
        self,
        config: RLHPConfig,
        labeller: Labeller,
        store: PreferenceStore,
        envs: gym.vector.VectorEnv | None = None,
    ) -> None:
        self.config = config
        self.labeller = labeller
        self.store = store
        check_labeller(config.feedback, labeller)
        self.rng = np.random.default_rng(config.ppo.seed)
        self.normalization_steps: tuple[torch.Tensor, torch.Tensor] | None = None
        """(obs, actions) the learned reward is normalised on, with ``reward_normalization`` initial."""
        self.ppo = PPOTrainer(config.ppo, envs, reward_fn=self.learned_reward)
        obs_space = self.ppo.envs.single_observation_space
        assert isinstance(obs_space, gym.spaces.Box)
        self.reward_model = RewardModel(obs_space, self.ppo.envs.single_action_space, config.reward_model)
        generator = torch.Generator().manual_seed(config.ppo.seed + 1)
        self.reward_trainer = RewardModelTrainer(self.reward_model, config.reward_trainer, generator)
        self.selector: QuerySelector = (
            DisagreementSelector(self.reward_model, self.rng, config.oversample)
            if config.query_selection == "disagreement"
            else RandomSelector(self.rng)
        )
        self.segment_length = config.segment_length or default_segment_length(config.ppo.env_id)
        self.pool = SegmentPool(config.pool_size)
        self.comparisons = ComparisonCache(store)
        self.num_asked = 0
        self.num_answers_seen = 0
        """Answers in the store (by anyone, skips included) at the last iteration."""
        self.pretrained = False
        self.fitted_signature = (0, 0)
        """The store's (count, last id) of trainable answers at the last fit."""
        self.reward_fitted = False
        """Whether the agent is paid the learned reward yet (zero before the first fit)."""
        self.true_reward_seen = False
        """Whether the env has paid any nonzero reward yet (a task with none has no true-return metrics)."""
        self.monitor = HackingMonitor(config.monitor)
        self.reference: list[Segment] = []
        """The first segments labelled (the initial policy's): the monitor's fixed yardstick."""
        self.refit_process: RefitProcess | None = None
        """Where refits run with ``async_refit`` (started at the first refit after the one before RL):
        a refit submitted there is joined before the next rollout is paid, and before a checkpoint."""
        self.refit_metrics: dict[str, float] = {}
        """A refit's metrics joined for a checkpoint, logged with the next iteration."""

    @property
    def done(self) -> bool:
        return self.ppo.done

    @property
    def global_step(self) -> int:
        return self.ppo.global_step

    @property
    def people_answer(self) -> bool:
        """People answer in the app, at their own pace: queries wait for them in the store."""
        return self.labeller.max_pending is not None

    def state_dict(self) -> dict[str, Any]:
        """The PPO state (readable by ``load_agent`` and ``prefrl video``) plus, under ``rlhp``, the
        reward model, its trainer and the random states. The answers live in the store."""
        self.refit_metrics = self.join_refit()  # logged with the next iteration
        state = self.ppo.state_dict()
        state["rlhp"] = {
            "config": dataclasses.asdict(self.config),
            "reward_model": self.reward_model.state_dict(),
            "reward_trainer": (
                self.refit_process.trainer_state() if self.refit_process else self.reward_trainer.state_dict()
            ),
            "rng": self.rng.bit_generator.state,
            "labeller": self.labeller.state_dict() if hasattr(self.labeller, "state_dict") else None,
            "normalization_steps": self.normalization_steps,
            "true_reward_seen": self.true_reward_seen,
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint of :meth:`state_dict`; the asked count comes from the store, so
        answers given after the checkpoint count (none is lost)."""
        self.ppo.load_state_dict(state)
        saved = state["rlhp"]
        self.reward_model.load_state_dict(saved["reward_model"])
        self.reward_trainer.load_state_dict(saved["reward_trainer"])
        self.rng.bit_generator.state = saved["rng"]
        self.normalization_steps = saved.get("normalization_steps")
        self.true_reward_seen = saved.get("true_reward_seen", True)
        if saved.get("labeller") is not None and hasattr(self.labeller, "load_state_dict"):
            self.labeller.load_state_dict(saved["labeller"])
        self.num_asked = self.store.num_queries()
        self.num_answers_seen = self.store.num_comparisons()
        self.pretrained = True
        self.reward_fitted = True

    def learned_reward(
        self, obs: np.ndarray, actions: np.ndarray, env_rewards: np.ndarray, terminated: np.ndarray
    ) -> np.ndarray:
        """(B, D), (B, ...), (B,), (B,) -> (B,) what the agent is paid: the normalised learned reward,
        plus on a terminating step the absorbing state's discounted value (with ``absorbing``). Zero
        until the first fit (on ``human.min_labels`` answers when people answer): an untrained or
        barely trained network's reward would send the policy astray."""
        paid = self.config.env_reward_coef * env_rewards
        if not self.reward_fitted:
            return paid
        gamma = self.config.ppo.gamma if self.config.absorbing else None
        return paid + self.reward_model.agent_reward(obs, actions, terminated, gamma)

    def train_iteration(self) -> dict[str, float]:
        """One iteration of the paper's loop, as its named steps (the first iteration starts with
        :meth:`pretrain`). The PPO update trains on the learned reward of the model refitted in this
        iteration (``reward_after_fit``; else the model before the refit), never on the env's."""
        metrics = {} if self.pretrained else self.pretrain()
        cfg = self.config
        # 1. collect: a rollout of the current policy (paid below); frames for people's clips are
        #    drawn only when new queries will be asked about it
        self.record_frames()
        rollout, episodes = self.ppo.collect_rollout(rewards=not (cfg.reward_after_fit or cfg.async_refit))
        start = time.perf_counter()
        metrics.update(self.join_refit())  # async_refit: the last iteration's refit, in the background
        self.true_reward_seen |= bool(rollout.true_rewards[rollout.valid].any())
        # 2. segments: cut it into segments for the pool (and check the reward model on them)
        fresh = self.cut_segments(rollout)
        if self.true_reward_seen:  # the checks compare with the env's reward
            metrics.update(self.diagnose(fresh))
        if cfg.async_refit:  # 6 before 5: pay with the model before this refit, which runs meanwhile
            rollout = self.ppo.collector.with_rewards(rollout)
        # 3-5. queries, answers, fit
        metrics.update(self.ask_and_fit(rollout))
        # 6. pay: the rollout's reward from the refitted model
        if cfg.reward_after_fit and not cfg.async_refit:
            rollout = self.ppo.collector.with_rewards(rollout)
        preferences_seconds = time.perf_counter() - start
        # 7. PPO update on the learned reward
        metrics.update(self.ppo.update_from(rollout, episodes))
        metrics["time/preferences_s"] = preferences_seconds  # segments, queries, labels, refit
        metrics["time/steps_per_second"] = cfg.ppo.batch_size / (
            metrics["time/rollout_s"] + metrics["time/update_s"] + preferences_seconds
        )
        return metrics if self.true_reward_seen else without_true_reward(metrics)

    def pretrain(self) -> dict[str, float]:
        """Before RL: fill the pool with the initial policy's segments, ask the first queries and fit
        the reward model on their answers. When people answer, RL starts at once (paid zero until
        ``human.min_labels`` answers are fitted) and later iterations refit as answers arrive."""
        wanted = min(max(2, 2 * self.queries_due()), self.config.pool_size)
        rollout, attempt = None, 0
        for attempt in range(1, MAX_PRETRAIN_ROLLOUTS + 1):
            rollout, _ = self.ppo.collect_rollout()
            self.cut_segments(rollout)
            if len(self.pool) >= wanted or (attempt >= 10 and len(self.pool) < 2):
                break
        if rollout is None or len(self.pool) < 2:
            raise ValueError(
                f"no two segments of {self.segment_length} steps in {attempt} rollouts of "
                f"{self.config.ppo.env_id}: its episodes are shorter; pass a smaller --segment-length"
                + ("" if self.config.absorbing else " or drop --no-absorbing")
            )
        metrics = self.ask_and_fit(rollout)
        self.pretrained = True
        return metrics

    def ask_and_fit(self, rollout: Rollout) -> dict[str, float]:
        """Steps 3-5: ask the queries due, have them answered, refit on the answers if they changed."""
        metrics = self.ask(self.queries_due())
        self.answer(metrics.pop("new_queries"))
        num_answers = self.store.num_comparisons()
        metrics["preferences/num_answered"] = float(num_answers - self.num_answers_seen)  # by anyone
        self.num_answers_seen = num_answers
        signature = self.store.answers_signature()
        if signature != self.fitted_signature and signature[0] > 0 and self.refit_due():
            metrics.update(self.fit_reward_model(rollout))
        metrics["preferences/num_labels"] = float(signature[0])
        if self.people_answer:  # what the labelling app's admin page shows about training
            self.store.set_meta(TRAINING_STATUS_KEY, json.dumps(self.training_status()))
        return metrics

    def training_status(self) -> dict[str, Any]:
        """Where training stands, for people: steps, and whether the agent is paid the learned reward."""
        cfg = self.config
        return {
            "step": self.ppo.global_step,
            "total_steps": cfg.ppo.num_iterations * cfg.ppo.batch_size,
            "reward_fitted": self.reward_fitted,
            "answers_fitted": self.fitted_signature[0],
            "min_labels": cfg.human.min_labels,
        }

    def queries_due(self) -> int:
        """New queries to ask now. A labeller that answers at once follows the label schedule (the
        initial share of the budget before RL, then the rate c / (T + c)); people get the queue
        topped up to ``max_pending`` waiting queries, within the whole budget."""
        cfg = self.config
        if self.labeller.max_pending is not None:
            room = self.labeller.max_pending - self.store.num_pending()
            return min(room, cfg.num_labels - self.num_asked)
        if not self.pretrained:
            return cfg.num_initial_labels - self.num_asked
        due = labels_due(
            self.ppo.global_step, cfg.ppo.num_iterations * cfg.ppo.batch_size, cfg.num_labels,
            cfg.num_initial_labels, cfg.label_decay_steps or cfg.ppo.total_timesteps / 5,
        )  # fmt: skip
        return due - self.num_asked

    def ask(self, num_queries: int) -> dict[str, Any]:
        """Step 3: select ``num_queries`` pairs from the pool (where the ensemble disagrees most), or
        single segments to rate (``feedback``), and store them as queries; ``new_queries``: their
        ids and segments (a pair, or one segment)."""
        new: list[Query] = []
        if num_queries > 0 and len(self.pool) >= 2:
            cfg = self.config
            num_ratings = {"compare": 0, "rate": num_queries, "both": (num_queries + self.num_asked % 2) // 2}
            rated = num_ratings[cfg.feedback]
            chosen = select_queries(self.selector, self.pool, num_queries - rated, rated)
            redundancy = cfg.human.redundancy if self.people_answer else 1
            new = store_queries(
                self.store, chosen, self.ppo.iteration, redundancy, cfg.reward_model.rating_classes
            )
            self.num_asked += len(new)
        return {
            "new_queries": new,
            "preferences/num_asked": float(self.num_asked),
            "preferences/num_pending": float(self.store.num_pending()),
        }

    def answer(self, queries: list[Query]) -> None:
        """Step 4: a labeller that answers at once labels (or rates) the new queries now (their
        answers go into the store); people answer the waiting queries in the app instead, at their
        own pace."""
        if not self.people_answer and queries:
            answer_now(self.store, self.labeller, queries, self.config.reward_model.rating_classes)

    def refit_due(self) -> bool:
        """The first fit, answers taken back (undo), or the labels grown by ``refit_growth``."""
        count, fitted = self.store.answers_signature()[0], self.fitted_signature[0]
        return not self.reward_fitted or count < fitted or count >= fitted * (1 + self.config.refit_growth)

    def cut_segments(self, rollout: Rollout) -> list[Segment]:
        """Step 2: cut the rollout into segments and add them to the pool (when people answer, only
        segments they can be shown: with a render state or frames)."""
        clips_from_obs = self.people_answer and self.reward_model.frames  # Atari: its frames are the clips
        segments = cut_segments(rollout, self.segment_length, self.rng, self.config.absorbing, clips_from_obs)
        if not self.people_answer or rollout.render_states is not None or clips_from_obs:
            self.pool.add(segments)
        return segments

    def record_frames(self) -> None:
        """Envs whose clips come from frames draw them only for a rollout that new queries will ask
        about (drawing is the costly part of their rollouts); other envs record their state always,
        at no cost."""
        if self.people_answer and self.ppo.envs.metadata.get(CLIP_FRAMES, False):
            self.ppo.envs.set_attr("record", self.queries_due() > 0)  # type: ignore[attr-defined]  # sync and async envs have it

    def fit_reward_model(self, rollout: Rollout) -> dict[str, float]:
        """Step 5: fit the ensemble to every comparison so far, renormalise its reward (on the first
        rollout's steps, or this one's). The first fit runs ``initial_num_epochs``; later ones
        ``num_epochs``, at most ``max_steps_per_refit`` gradient steps."""
        self.fitted_signature = self.store.answers_signature()  # before reading: later answers are new
        batch, ratings = self.comparisons.batch(), self.comparisons.ratings()
        steps = (rollout.raw_obs[rollout.valid], rollout.env_actions[rollout.valid])
        if self.config.reward_normalization == "initial":
            self.normalization_steps = self.normalization_steps or steps
            steps = self.normalization_steps
        cfg = self.config.reward_trainer
        args: FitArgs = (batch, cfg.max_steps_per_refit, None, ratings, steps)
        if not self.reward_fitted:  # the first fit, before RL: every answer, the initial epochs, here
            args = (batch, None, cfg.initial_num_epochs, ratings, steps)
        elif self.config.async_refit:
            if self.refit_process is None:
                obs_space = self.ppo.envs.single_observation_space
                assert isinstance(obs_space, gym.spaces.Box)
                spaces = (obs_space, self.ppo.envs.single_action_space)
                self.refit_process = RefitProcess(self.reward_trainer, spaces)
            self.refit_process.submit(args)
            return {}
        return self.fitted(self.reward_trainer.refit(*args))

    def fitted(self, metrics: dict[str, float]) -> dict[str, float]:
        """After a fit with these metrics: the agent is paid the learned reward once it was trained
        (on ``human.min_labels`` answers, when people answer)."""
        trained = "reward_model/train_loss" in metrics or "reward_model/rating_train_loss" in metrics
        answers = sum(metrics.get(f"reward_model/num_{kind}", 0.0) for kind in ("comparisons", "ratings"))
        enough = not self.people_answer or answers >= self.config.human.min_labels
        self.reward_fitted |= trained and enough
        return metrics

    def join_refit(self) -> dict[str, float]:
        """Wait for the refit in ``refit_process`` (``async_refit``), if one runs, and return its
        metrics (and any kept from a refit joined for a checkpoint); {} when there is none."""
        metrics, self.refit_metrics = self.refit_metrics, {}
        if self.refit_process is not None and self.refit_process.pending:
            metrics = {**metrics, **self.fitted(self.refit_process.result())}
        return metrics

    def close(self) -> None:
        """Stop the refit process, if any (a refit still running is abandoned)."""
        if self.refit_process is not None:
            self.refit_process.close()
            self.refit_process = None

    def diagnose(self, fresh: list[Segment]) -> dict[str, float]:
        """Predicted against true returns on segments the reward model has never been fitted on,
        and the hacking monitor's verdict (a warning when a hacking episode starts)."""
        if len(fresh) < 3:
            return {}
        if not self.reference:
            self.reference = self.store.segments(
                range(1, min(REFERENCE_SEGMENTS, self.store.num_segments()) + 1)
            )
        metrics = segment_diagnostics(self.reward_model, self.monitor, fresh, self.reference)
        if "monitor/return_gap" in metrics and self.monitor.started:  # updated now, hacking begins
            log.warning(
                "possible reward hacking at step %d: the predicted return rises while its "
                "correlation with the true return falls (return gap %.2f reference std)",
                self.ppo.global_step, metrics["monitor/return_gap"],
            )  # fmt: skip
        return metrics
