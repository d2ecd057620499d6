"""The offline default pipeline, as its named steps: build a tokenizer and a tiny GPT -> SFT on
demonstrations -> sample pairs from the SFT policy -> a synthetic labeller answers from the gold score
-> fit a reward model (shifted so SFT samples score 0) -> PPO against it, logging proxy, gold and KL.

Each step is a function; ``prefrl lm pipeline`` runs them with progress bars (``cli/lm_pipeline.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from prefrl.lm import tiny_task
from prefrl.lm.data import left_pad
from prefrl.lm.generation import sample
from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rm_training import RMConfig, encode_rankings
from prefrl.lm.sft import SFTConfig
from prefrl.validation import require, require_positive, validation_enabled

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class PipelineConfig:
    """The offline default: a tiny GPT learns to write restaurant reviews (SFT), a synthetic labeller
    compares pairs of its samples by a hidden gold score, a reward model learns from those answers,
    and PPO optimises it. A few minutes on 2 CPU cores; the gold score rises."""

    seed: int = 1
    """Seed of the whole pipeline."""
    arch: str = "gpt2"
    """Tiny model built from a transformers config: gpt2 or llama."""
    num_demonstrations: int = 4000
    """Synthetic demonstrations for SFT."""
    num_labels: int = 1000
    """Pairs of SFT samples the synthetic labeller answers (ties dropped); 20% held out."""
    labeller_noise: float = 0.0
    """Share of the labeller's answers given at random."""
    sft: SFTConfig = field(default_factory=lambda: SFTConfig(num_epochs=2.0))
    rm: RMConfig = field(default_factory=lambda: RMConfig(num_epochs=2.0))
    ppo: LMPPOConfig = field(default_factory=LMPPOConfig)
    num_samples: int = 8
    """Samples shown before and after PPO."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        require(self.arch in ("gpt2", "llama"), f"arch must be gpt2 or llama, got {self.arch!r}: fix --arch")
        require_positive("num_demonstrations", self.num_demonstrations)
        require(self.num_labels >= 10, f"num_labels must be >= 10, got {self.num_labels}: fix --num-labels")
        self.sft.validate()
        self.rm.validate()
        self.ppo.validate()


def gold_fn(prompts: list[str], responses: list[str]) -> list[float]:
    """The tiny task's hidden preference as a reward function."""
    return [tiny_task.gold_score(p, r) for p, r in zip(prompts, responses, strict=True)]


def segment_gold_fn(prompts: list[str], responses: list[str]) -> list[list[float]]:
    """The hidden preference per sentence (``--reward-level segment``); sums to ``gold_fn``."""
    return [tiny_task.segment_gold(p, r) for p, r in zip(prompts, responses, strict=True)]


def build(config: PipelineConfig) -> tuple[Any, Any]:
    """(tokenizer trained locally, tiny causal LM built from a config)."""
    tokenizer = tiny_task.build_tokenizer()
    model = tiny_task.build_tiny_model(tokenizer, config.seed, config.arch)
    return tokenizer, model


@torch.no_grad()
def sample_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float,
    seed: int,
) -> list[str]:
    """One sampled response text per prompt (no EOS, no padding)."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    texts: list[str] = []
    for start in range(0, len(prompts), 256):
        chunk = prompts[start : start + 256]
        ids = [list(x) for x in tokenizer(chunk, add_special_tokens=False)["input_ids"]]
        p_ids, p_mask = left_pad(ids, tokenizer.pad_token_id)
        responses, mask = sample(
            model,
            p_ids,
            p_mask,
            max_new_tokens,
            tokenizer.eos_token_id,
            tokenizer.pad_token_id,
            temperature,
            generator,
        )
        keep = mask & (responses != tokenizer.eos_token_id)
        texts += tokenizer.batch_decode(
            torch.where(keep, responses, tokenizer.pad_token_id), skip_special_tokens=True
        )
    return texts


def collect_pairs(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: PipelineConfig
) -> list[dict[str, str]]:
    """Plain (prompt, response_1, response_2) records of two SFT samples per prompt; non-empty only."""
    rng = random.Random(config.seed + 1)
    prompts = tiny_task.sample_prompts(rng, config.num_labels)
    first = sample_texts(model, tokenizer, prompts, config.ppo.max_new_tokens, 1.0, config.seed + 2)
    second = sample_texts(model, tokenizer, prompts, config.ppo.max_new_tokens, 1.0, config.seed + 3)
    return [
        {"prompt": p, "response_1": a, "response_2": b}
        for p, a, b in zip(prompts, first, second, strict=True)
        if a.strip() and b.strip()
    ]


def label(
    pairs: list[dict[str, str]], config: PipelineConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Synthetic labels from the gold score -> (train, held-out) {"prompt", "chosen", "rejected"}."""
    labeller = tiny_task.GoldLabeller(noise=config.labeller_noise)
    records = tiny_task.label_pairs(random.Random(config.seed + 4), pairs, labeller)
    split = max(1, len(records) // 5)
    return records[split:], records[:split]


@torch.no_grad()
def shift_reward_model(
    rm: ScalarRewardModel, tokenizer: PreTrainedTokenizerBase, records: list[dict[str, Any]]
) -> float:
    """Shift the RM so that the reference (SFT) answers of ``records`` score 0 on average."""
    rm.eval()
    scores = rm(encode_rankings(tokenizer, records, list(range(len(records)))))
    rm.shift_to(scores)
    return float(rm.shift)


def make_ppo_trainer(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rm: ScalarRewardModel,
    config: PipelineConfig,
    ppo: LMPPOConfig | None = None,
) -> LMPPOTrainer:
    prompts = tiny_task.sample_prompts(random.Random(config.seed + 5), 512)
    return LMPPOTrainer(policy, tokenizer, prompts, ppo or config.ppo, reward_model=rm, gold_fn=gold_fn)


def evaluate_policy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: PipelineConfig, num: int = 256
) -> dict[str, Any]:
    """Mean gold score of ``num`` samples on fixed prompts, and the first few samples."""
    prompts = tiny_task.sample_prompts(random.Random(config.seed + 6), num)
    texts = sample_texts(
        model, tokenizer, prompts, config.ppo.max_new_tokens, config.ppo.temperature, config.seed + 7
    )
    gold = gold_fn(prompts, texts)
    shown = config.num_samples
    return {
        "gold_score": sum(gold) / len(gold),
        "samples": [
            {"prompt": p, "response": r, "gold": g}
            for p, r, g in zip(prompts[:shown], texts[:shown], gold[:shown], strict=True)
        ],
    }
