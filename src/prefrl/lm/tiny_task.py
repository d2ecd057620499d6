"""The offline default: a tiny synthetic language of restaurant reviews with a hidden gold preference.

A prompt asks for a review of one dish ("review of the pizza :"); a response is a few short sentences
("the pizza was great . the staff was friendly ."). The gold score is what a person would want from
such a review: positive (saturating: two good sentences are as good as five), specific (it talks
about the dish it was asked about, and about several different things), and not repetitive (the same
word again costs). The demonstrations (SFT data) are a mix of good, bad and dull reviews, so the SFT
policy's gold score is near 0 and there is room to improve; a reward model learned from a limited
number of gold-labelled pairs is only a proxy, and a policy that pushes it too far finds its holes.

Everything here is plain Python and deterministic given a ``random.Random``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DISHES = ("pizza", "pasta", "soup", "salad", "burger", "coffee", "cake", "curry", "steak", "bread")
ASPECTS = ("staff", "service", "room", "music", "price", "table", "wine", "view")
POSITIVE = ("great", "delicious", "friendly", "lovely", "excellent", "fresh", "perfect", "tasty")
NEGATIVE = ("bad", "cold", "rude", "awful", "bland", "slow", "dirty", "stale")
NEUTRAL = ("okay", "fine", "normal", "average")
INTENSIFIERS = ("very", "really", "so")
FILLER = ("it", "was", "a", "place", "i", "ate", "there", "food", "good")
CONTENT_WORDS = frozenset(DISHES + ASPECTS + POSITIVE + NEGATIVE + NEUTRAL)
SPECIAL_TOKENS = ("<pad>", "<eos>", "<unk>")
PAD, EOS, UNK = SPECIAL_TOKENS


def make_prompt(dish: str) -> str:
    return f"review of the {dish} :"


def prompt_dish(prompt: str) -> str | None:
    words = prompt.split()
    return words[3] if len(words) >= 4 and words[3] in DISHES else None


def gold_score(prompt: str, response: str) -> float:
    """The hidden preference, in about [-2, 2.5]: sentiment (saturating at +-1.5), specificity
    (+0.5 for the dish asked about, +0.25 per further distinct subject up to 3, -0.5 for an empty
    review), minus 0.5 per repeated content word and 0.25 per word beyond 24."""
    words = response.split()
    if not words:
        return -2.0
    sentiment = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
    score = max(-1.5, min(1.5, 0.5 * sentiment))
    dish = prompt_dish(prompt)
    subjects = {w for w in words if w in DISHES or w in ASPECTS}
    if dish is not None and dish in subjects:
        score += 0.5
    score += 0.25 * min(3, len(subjects - {dish}))
    counts = Counter(w for w in words if w in CONTENT_WORDS)
    score -= 0.5 * sum(c - 1 for c in counts.values())
    score -= 0.25 * max(0, len(words) - 24)
    return float(score)


def segment_gold(prompt: str, response: str) -> list[float]:
    """The gold score as a process reward, one number per sentence (segments end with "."): each
    sentence is paid what it adds to the gold score of the review so far (the first, its own gold
    score), so the numbers sum to ``gold_score`` of the whole response."""
    sentences, current = [], []
    for word in response.split():
        current.append(word)
        if word == ".":
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    rewards, before, words = [], 0.0, []
    for sentence in sentences:
        words += sentence
        now = gold_score(prompt, " ".join(words))
        rewards.append(now - before)
        before = now
    return rewards


def _sentence(rng: random.Random, subject: str, mood: str) -> str:
    pool = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}[mood]
    adjective = rng.choice(pool)
    if rng.random() < 0.3:
        adjective = f"{rng.choice(INTENSIFIERS)} {adjective}"
    if rng.random() < 0.15:  # a repetitive writer
        adjective = f"{adjective} {adjective.split()[-1]}"
    return f"the {subject} was {adjective} ."


def sample_review(rng: random.Random, prompt: str) -> str:
    """A demonstration: 1-3 sentences, each about the dish, another dish or an aspect, with a mood
    drawn per review (mostly one mood, sometimes mixed)."""
    dish = prompt_dish(prompt) or rng.choice(DISHES)
    mood = rng.choice(("positive", "negative", "neutral"))
    sentences = []
    for i in range(rng.randint(1, 3)):
        r = rng.random()
        subject = dish if (i == 0 and r < 0.6) else rng.choice(ASPECTS if r < 0.8 else DISHES)
        sentence_mood = mood if rng.random() < 0.8 else rng.choice(("positive", "negative", "neutral"))
        sentences.append(_sentence(rng, subject, sentence_mood))
    if rng.random() < 0.1:
        sentences.append(f"i ate there . it was a {rng.choice(('good', 'okay'))} place .")
    return " ".join(sentences)


def sample_prompts(rng: random.Random, num: int) -> list[str]:
    return [make_prompt(rng.choice(DISHES)) for _ in range(num)]


def sft_records(rng: random.Random, num: int) -> list[dict[str, str]]:
    """``num`` demonstrations as TRL-style {"prompt", "completion"} records."""
    return [{"prompt": p, "completion": sample_review(rng, p)} for p in sample_prompts(rng, num)]


def corpus() -> list[str]:
    """Every word of the language once, for training the tokenizer."""
    words = DISHES + ASPECTS + POSITIVE + NEGATIVE + NEUTRAL + INTENSIFIERS + FILLER
    return [" ".join(words), "review of the : ."]


@dataclass(frozen=True)
class GoldLabeller:
    """Answers "which response is better?" from the gold score: label 1 if response 1 is better, 0 if
    response 2 is, 0.5 for a tie. ``noise`` is the share of answers given uniformly at random."""

    noise: float = 0.0

    def label(self, rng: random.Random, prompt: str, response_1: str, response_2: str) -> float:
        if self.noise > 0 and rng.random() < self.noise:
            return float(rng.choice((0.0, 1.0)))
        g1, g2 = gold_score(prompt, response_1), gold_score(prompt, response_2)
        return 0.5 if g1 == g2 else float(g1 > g2)


def label_pairs(
    rng: random.Random, pairs: list[dict[str, str]], labeller: GoldLabeller
) -> list[dict[str, Any]]:
    """Plain (prompt, response_1, response_2) records -> TRL-style {"prompt", "chosen", "rejected"}
    records (ties are no label and are dropped)."""
    out = []
    for pair in pairs:
        label = labeller.label(rng, pair["prompt"], pair["response_1"], pair["response_2"])
        if label == 0.5:
            continue
        chosen, rejected = (
            (pair["response_1"], pair["response_2"])
            if label == 1.0
            else (pair["response_2"], pair["response_1"])
        )
        out.append({"prompt": pair["prompt"], "chosen": chosen, "rejected": rejected})
    return out


def build_tokenizer(path: Path | None = None, lines: list[str] | None = None) -> Any:
    """A word-level tokenizer trained locally on the language (``tokenizers``; ``lines``: another
    language's words, default the reviews'), wrapped as a transformers fast tokenizer with dedicated
    <pad> and <eos>, left padding; saved to ``path``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(lines or corpus(), trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS)))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left"
    )
    if path is not None:
        fast.save_pretrained(str(path))
    return fast


def build_tiny_model(
    tokenizer: PreTrainedTokenizerBase, seed: int, arch: str = "gpt2", max_positions: int = 64
) -> Any:
    """A tiny causal LM built from a transformers config (trained from scratch): 2 layers, d = 64."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.eos_token_id,
    }
    if arch == "gpt2":
        config: Any = GPT2Config(
            vocab_size=len(tokenizer), n_positions=max_positions, n_embd=64, n_layer=2, n_head=4, **ids
        )
    elif arch == "llama":
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=max_positions,
            **ids,
        )
    else:
        raise ValueError(f"unknown arch {arch!r}: use gpt2 or llama")
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)
