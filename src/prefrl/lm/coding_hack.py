"""The coding agent's reward hack, as an experiment: a tiny GPT learns to write programs for the coding
task (:mod:`prefrl.lm.coding_task`) by SFT on a mix of general and special-cased solutions, then PPO
trains one copy of it per *arm*:

- ``proxy``: rewarded by the shown tests passing ("the tests pass"). A lookup of the shown tests passes
  them all, the rule is harder to get right: the policy learns to special-case the tests, the proxy
  goes to 1 and the gold (held-out inputs right) falls below where SFT started.
- ``hidden-tests``: rewarded by the shown and the held-out tests together: a lookup earns little, the
  rule everything; the gold rises.
- ``kl-budget``: the proxy with a large KL penalty to the SFT policy (``kl_budget_coef``): the hack is
  held back, and so is any gain.
- ``preferences``: a reward model learned from a judge's preferences between pairs of SFT programs
  (the one that gets more held-out inputs right: a reviewer who reads the programs), as in RLHF.

Each iteration logs the proxy (``coding/shown_pass``), the gold (``coding/held_out_pass``), the share
of special-cased programs (``coding/special_cased``, the hack's detector: programs that test ``x``
against the shown inputs literally) and the hacking monitor's predicted-vs-gold gap
(``monitor/return_gap``: the proxy's and the gold's improvement over the SFT policy's samples, in
their standard deviations); a warning goes to the log when the detector or the monitor fires.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from prefrl.lm import coding_task, tiny_task
from prefrl.lm.coding_task import CodingScores, CodingTaskConfig
from prefrl.lm.pipeline import sample_texts
from prefrl.lm.ppo import LMPPOTrainer
from prefrl.lm.ppo_config import LMPPOConfig
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rm_training import RMConfig
from prefrl.lm.sft import SFTConfig
from prefrl.reward_model.monitor import HackingMonitor, MonitorConfig
from prefrl.validation import require, require_positive, require_unit_interval, validation_enabled

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger("prefrl.lm")

Arm = Literal["proxy", "hidden-tests", "kl-budget", "preferences"]
ARMS: tuple[Arm, ...] = ("proxy", "hidden-tests", "kl-budget", "preferences")


@dataclass(frozen=True)
class CodingHackConfig:
    """A tiny GPT writes programs from examples (SFT), then PPO on "the shown tests pass" learns to
    special-case the tests while the held-out score falls; PPO on hidden tests too, and PPO with a KL
    budget, beside it. About 2 minutes on 2 CPU cores."""

    seed: int = 1
    """Seed of the whole experiment."""
    task: CodingTaskConfig = field(default_factory=CodingTaskConfig)
    num_demonstrations: int = 4000
    """SFT demonstrations (``task.special_share`` of them special-cased)."""
    sft: SFTConfig = field(default_factory=lambda: SFTConfig(num_epochs=6.0, max_new_tokens=24))
    ppo: LMPPOConfig = field(
        default_factory=lambda: LMPPOConfig(num_iterations=50, learning_rate=5e-5, max_new_tokens=24)
    )
    """PPO of every arm (a learning rate at which the hack takes some 20 iterations, so that it can be
    watched: at 3e-4 it takes 5)."""
    arms: tuple[Arm, ...] = ARMS
    """Which arms to train, each from the SFT policy."""
    kl_budget_coef: float = 2.0
    """KL penalty coefficient of the kl-budget arm (the others use ``ppo.kl_coef``)."""
    num_labels: int = 3000
    """Pairs of SFT programs the judge compares for the preferences arm (ties dropped: about 40% are
    kept; 20% of those held out). With 1000, the reward model reached 0.62 held-out accuracy and
    PPO drove the gold down to 0.11 on it (seed 1)."""
    rm: RMConfig = field(default_factory=lambda: RMConfig(num_epochs=3.0))
    """The preferences arm's reward model (initialised from the SFT policy)."""
    monitor: MonitorConfig = field(default_factory=lambda: MonitorConfig(window=8, min_rise=0.05))
    """The hacking monitor (proxy as the predicted side, gold as the true side). Its trends over 64
    programs an iteration are noisy: min_rise 0.05 (reference std per iteration) over 8 iterations
    keeps the hidden-tests and kl-budget arms quiet (chosen on seed 1, checked on seeds 2 and 3)."""
    detector_margin: float = 0.15
    """The detector fires when the special-cased share, averaged over ``detector_window`` iterations,
    exceeds the SFT policy's by this much."""
    detector_window: int = 3
    """Iterations the detector averages over."""
    num_eval: int = 256
    """Samples of the SFT and the trained policies that are scored."""
    num_samples: int = 6
    """Sample programs shown in the report, before and after."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        self.task.validate()
        require_positive("num_demonstrations", self.num_demonstrations)
        require(bool(self.arms), "arms is empty: name at least one of " + ", ".join(ARMS))
        require(len(set(self.arms)) == len(self.arms), f"arms {self.arms} names one twice: fix --arms")
        require(self.kl_budget_coef >= 0, f"kl_budget_coef must be >= 0, got {self.kl_budget_coef}")
        require(self.num_labels >= 10, f"num_labels must be >= 10, got {self.num_labels}: fix --num-labels")
        self.rm.validate()
        require_unit_interval("detector_margin", self.detector_margin)
        require_positive("detector_window", self.detector_window)
        require_positive("num_eval", self.num_eval)
        self.sft.validate()
        self.ppo.validate()
        self.monitor.validate()


def prompt_length(config: CodingHackConfig) -> int:
    """Tokens of a task prompt: ``f ( a ) = b ;`` per shown example, then ``f ( x ) =``."""
    return 7 * config.task.num_shown + 5


def build(config: CodingHackConfig) -> tuple[Any, Any]:
    """(word-level tokenizer of the tiny language, tiny GPT with room for prompt and program)."""
    tokenizer = tiny_task.build_tokenizer(lines=coding_task.corpus())
    positions = prompt_length(config) + max(config.ppo.max_new_tokens, config.sft.max_new_tokens) + 8
    return tokenizer, tiny_task.build_tiny_model(tokenizer, config.seed, max_positions=positions)


def demonstrations(config: CodingHackConfig) -> list[dict[str, str]]:
    return coding_task.sft_records(random.Random(config.seed), config.num_demonstrations, config.task)


@dataclass(frozen=True)
class Measures:
    """Per program (N,): proxy (shown tests), gold (held-out tests), special-cased (0/1)."""

    proxy: np.ndarray
    gold: np.ndarray
    special: np.ndarray

    @classmethod
    def of(cls, scores: CodingScores, prompts: list[str], programs: list[str]) -> Measures:
        return cls(
            np.array(scores.shown(prompts, programs)),
            np.array(scores.held_out(prompts, programs)),
            np.array(scores.special(prompts, programs)),
        )

    def means(self) -> dict[str, float]:
        return {
            "shown_pass": float(self.proxy.mean()),
            "held_out_pass": float(self.gold.mean()),
            "special_cased": float(self.special.mean()),
        }


def evaluate(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: CodingHackConfig
) -> tuple[Measures, list[dict[str, Any]]]:
    """``num_eval`` samples on fixed prompts: their measures, and the first ``num_samples`` as records."""
    prompts = coding_task.sample_prompts(random.Random(config.seed + 6), config.num_eval, config.task)
    programs = sample_texts(
        model, tokenizer, prompts, config.ppo.max_new_tokens, config.ppo.temperature, config.seed + 7
    )
    measures = Measures.of(CodingScores(config.task), prompts, programs)
    shown = [
        {"prompt": p, "program": r, "shown_pass": float(s), "held_out_pass": float(g), "special": bool(c)}
        for p, r, s, g, c in zip(
            prompts, programs, measures.proxy, measures.gold, measures.special, strict=True
        )
    ]
    return measures, shown[: config.num_samples]


class CodingWatch:
    """The observer of an arm's PPO iterations: proxy, gold, special-cased share, the detector and the
    hacking monitor (proxy improvement vs gold improvement over the SFT policy's ``reference``
    samples); a warning in the log when the detector or the monitor starts firing."""

    def __init__(self, config: CodingHackConfig, reference: Measures, arm: str) -> None:
        self.scores, self.reference, self.arm = CodingScores(config.task), reference, arm
        self.monitor = HackingMonitor(config.monitor)
        self.threshold = float(reference.special.mean()) + config.detector_margin
        self.recent_special: deque[float] = deque(maxlen=config.detector_window)
        self.detected = False

    def __call__(self, prompts: list[str], programs: list[str]) -> dict[str, float]:
        now = Measures.of(self.scores, prompts, programs)
        metrics = {f"coding/{k}": v for k, v in now.means().items()}
        ref = self.reference
        metrics.update(self.monitor.update(now.proxy, now.gold, ref.proxy, ref.gold))
        self.recent_special.append(metrics["coding/special_cased"])
        detected = sum(self.recent_special) / len(self.recent_special) >= self.threshold
        metrics["coding/detector"] = float(detected)
        if detected and not self.detected:
            share = sum(self.recent_special) / len(self.recent_special)
            log.warning(
                "%s: the policy special-cases the tests: %.0f%% of its programs over the last %d "
                "iterations (SFT: %.0f%%)", self.arm, 100 * share, len(self.recent_special),
                100 * ref.special.mean(),
            )  # fmt: skip
        if self.monitor.started:
            log.warning(
                "%s: possible reward hacking: the proxy (shown tests) rises, the held-out score does not",
                self.arm,
            )
        self.detected = detected
        return metrics


def arm_config(config: CodingHackConfig, arm: Arm) -> LMPPOConfig:
    kl = config.kl_budget_coef if arm == "kl-budget" else config.ppo.kl_coef
    return replace(config.ppo, kl_coef=kl, seed=config.seed)


def make_trainer(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: CodingHackConfig,
    arm: Arm,
    reference: Measures,
    reward_model: ScalarRewardModel | None = None,
) -> LMPPOTrainer:
    """PPO for one arm, from ``policy`` (a copy of the SFT model) with the SFT model as its reference;
    the preferences arm optimises ``reward_model``."""
    require(
        (arm == "preferences") == (reward_model is not None),
        "the preferences arm, and it alone, needs a reward model",
    )
    scores = CodingScores(config.task)
    reward = None if reward_model is not None else scores.all_tests if arm == "hidden-tests" else scores.shown
    prompts = coding_task.sample_prompts(random.Random(config.seed + 5), 512, config.task)
    torch.manual_seed(config.seed + 8)  # the critic's head
    return LMPPOTrainer(
        policy,
        tokenizer,
        prompts,
        arm_config(config, arm),
        reward_model=reward_model,
        reward_fn=reward,
        gold_fn=scores.held_out,
        observer=CodingWatch(config, reference, arm),
    )


def judged_pairs(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: CodingHackConfig
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``num_labels`` pairs of SFT programs, each judged by which gets more held-out inputs right (ties
    dropped) -> (train, held-out) {"prompt", "chosen", "rejected"} records (20% held out)."""
    prompts = coding_task.sample_prompts(random.Random(config.seed + 1), config.num_labels, config.task)
    args = (model, tokenizer, prompts, config.ppo.max_new_tokens, 1.0)
    first, second = sample_texts(*args, config.seed + 2), sample_texts(*args, config.seed + 3)
    scores = CodingScores(config.task)
    gold_1, gold_2 = scores.held_out(prompts, first), scores.held_out(prompts, second)
    records = [
        {"prompt": p, "chosen": a if g1 > g2 else b, "rejected": b if g1 > g2 else a}
        for p, a, b, g1, g2 in zip(prompts, first, second, gold_1, gold_2, strict=True)
        if g1 != g2
    ]
    require(
        len(records) >= 10,
        f"the SFT policy's two programs tied on the held-out tests in {config.num_labels - len(records)} of "
        f"{config.num_labels} pairs, leaving {len(records)} to learn from: raise --num-labels or train SFT "
        "longer (--sft.num-epochs)",
    )
    split = max(1, len(records) // 5)
    return records[split:], records[:split]


def first_iteration(rows: list[dict[str, float]], key: str, threshold: float = 0.5) -> int | None:
    """The first iteration (1-based) whose ``key`` is at least ``threshold``, or None."""
    return next((i + 1 for i, row in enumerate(rows) if row.get(key, 0.0) >= threshold), None)


def gold_halfway(
    rows: list[dict[str, float]], gold_before: float, smooth: int = 3, min_fall: float = 0.05
) -> int | None:
    """The first iteration (1-based) at which the gold, averaged over ``smooth`` iterations, has
    fallen half the way from ``gold_before`` (the SFT policy's) to its final value; None if it
    did not fall by at least ``min_fall`` (batch noise is not a fall)."""
    gold = np.array([row["coding/held_out_pass"] for row in rows])
    if len(gold) < smooth:
        return None
    smoothed = np.convolve(gold, np.ones(smooth) / smooth, mode="valid")
    final = float(smoothed[-1])
    if final > gold_before - min_fall:
        return None
    below = np.nonzero(smoothed <= gold_before - (gold_before - final) / 2)[0]
    return int(below[0]) + smooth if len(below) else None
