"""``prefrl lm pairs``: a model's answers put before people. Two sampled answers per prompt become
text pairs in a preference store (a run directory of its own); ``prefrl label RUN_DIR`` serves them in
the labelling app, and ``prefrl lm rm`` / ``prefrl lm dpo --data RUN_DIR`` learn from the answers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from prefrl.cli.run_dir import PREFERENCES_FILE, create_run_dir, default_run_dir
from prefrl.lm.data import load_records
from prefrl.lm.loading import load_causal_lm, load_tokenizer
from prefrl.lm.pipeline import sample_texts
from prefrl.preferences.queue import LabelQueue
from prefrl.preferences.store import PreferenceStore
from prefrl.validation import require


@dataclass(frozen=True)
class PairsCommand:
    """Sample two answers per prompt from a model and store them as pairs for people to compare in the
    labelling app (serve with `prefrl label RUN_DIR`; train on the answers with `prefrl lm rm --data
    RUN_DIR` or `prefrl lm dpo --data RUN_DIR`)."""

    model: str
    """Causal LM whose answers people judge (path or hub id)."""
    prompts: str
    """Prompts: any dataset with a 'prompt' column (or conversations, with a chat template)."""
    num_pairs: int = 100
    """Pairs to ask about (prompts drawn at random, with repeats if there are fewer)."""
    max_new_tokens: int = 24
    """Longest answer (tokens)."""
    temperature: float = 1.0
    """Sampling temperature (two different answers need some)."""
    redundancy: int = 1
    """People asked per pair (k > 1: agreement statistics on the admin page)."""
    seed: int = 1
    """Seed of the prompt draws and the sampling."""

    def validate(self) -> None:
        require(self.num_pairs >= 1 and self.redundancy >= 1, "num_pairs and redundancy must be >= 1")
        require(self.temperature > 0, "temperature must be > 0: two answers to one prompt need sampling")


def run_pairs(cmd: PairsCommand, run_dir: Path | None, resume: Path | None, console: Console) -> int:
    """Sample, store the pairs, say how to serve them; nothing is written before every check."""
    require(resume is None, "the pairs of `prefrl lm pairs` are written once: serve them with `prefrl label`")
    tokenizer = load_tokenizer(cmd.model)
    prompts = [r["prompt"] for r in load_records(cmd.prompts, "prompts", tokenizer)]
    model = load_causal_lm(cmd.model)
    rng = random.Random(cmd.seed)
    drawn = [prompts[rng.randrange(len(prompts))] for _ in range(cmd.num_pairs)]
    first = sample_texts(model, tokenizer, drawn, cmd.max_new_tokens, cmd.temperature, cmd.seed + 1)
    second = sample_texts(model, tokenizer, drawn, cmd.max_new_tokens, cmd.temperature, cmd.seed + 2)
    pairs = [
        (p, a, b) for p, a, b in zip(drawn, first, second, strict=True) if a.strip() and b.strip() and a != b
    ]
    require(bool(pairs), "every sampled pair was empty or identical: raise --temperature or --max-new-tokens")
    run_dir = create_run_dir(run_dir or default_run_dir("lm-pairs", "lm", cmd.seed), "lm-pairs", cmd)
    with PreferenceStore(run_dir / PREFERENCES_FILE) as store:
        for prompt, a, b in pairs:
            store.add_text_pair(prompt, a, b, cmd.redundancy)
        LabelQueue(store).set_budget(len(pairs) * cmd.redundancy)
    console.print(f"{len(pairs)} pairs for people in {run_dir / PREFERENCES_FILE}", soft_wrap=True)
    console.print(f"serve them: prefrl label {run_dir}", soft_wrap=True)
    console.print(
        f"learn from the answers: prefrl lm rm --model {cmd.model} --data {run_dir}", soft_wrap=True
    )
    return 0
