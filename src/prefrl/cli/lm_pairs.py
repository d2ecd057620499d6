"""``prefrl lm pairs``: a model's answers put before people. Two sampled answers per prompt become
text pairs in a preference store (a run directory of its own), or K of them a ranking query
(InstructGPT's K-way rankings); ``prefrl label RUN_DIR`` serves them in the labelling app, and
``prefrl lm rm`` / ``prefrl lm dpo --data RUN_DIR`` learn from the answers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from prefrl.cli.run_dir import PREFERENCES_FILE, create_run_dir, default_run_dir
from prefrl.lm.loading import load_causal_lm, load_tokenizer
from prefrl.lm.pipeline import sample_texts
from prefrl.lm.records import load_records
from prefrl.preferences.queue import LabelQueue
from prefrl.preferences.store import PreferenceStore
from prefrl.preferences.texts import MAX_RANKED
from prefrl.validation import require


@dataclass(frozen=True)
class PairsCommand:
    """Sample two answers per prompt from a model and store them as pairs for people to compare in the
    labelling app, or K answers for people to rank (--num-answers K); serve them with `prefrl label
    RUN_DIR`, train on the answers with `prefrl lm rm --data RUN_DIR` or `prefrl lm dpo --data RUN_DIR`."""

    model: str
    """Causal LM whose answers people judge (path or hub id)."""
    prompts: str
    """Prompts: any dataset with a 'prompt' column (or conversations, with a chat template)."""
    num_pairs: int = 100
    """Queries to ask (prompts drawn at random, with repeats if there are fewer)."""
    num_answers: int = 2
    """Answers per prompt: 2 to compare, 3 to 9 to rank from best to worst (InstructGPT: 4 to 9), 1
    to rate on a scale of --rating-classes points."""
    rating_classes: int = 5
    """With --num-answers 1: points of the rating scale."""
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
        require(
            1 <= self.num_answers <= MAX_RANKED, f"num_answers must be 1 to {MAX_RANKED}: fix --num-answers"
        )
        require(self.temperature > 0, "temperature must be > 0: two answers to one prompt need sampling")
        require(self.rating_classes >= 2, "rating_classes must be >= 2: fix --rating-classes")


def run_pairs(cmd: PairsCommand, run_dir: Path | None, resume: Path | None, console: Console) -> int:
    """Sample, store the pairs, say how to serve them; nothing is written before every check."""
    require(resume is None, "the pairs of `prefrl lm pairs` are written once: serve them with `prefrl label`")
    tokenizer = load_tokenizer(cmd.model)
    prompts = [r["prompt"] for r in load_records(cmd.prompts, "prompts", tokenizer)]
    model = load_causal_lm(cmd.model)
    rng = random.Random(cmd.seed)
    drawn = [prompts[rng.randrange(len(prompts))] for _ in range(cmd.num_pairs)]
    samples = [
        sample_texts(model, tokenizer, drawn, cmd.max_new_tokens, cmd.temperature, cmd.seed + 1 + k)
        for k in range(cmd.num_answers)
    ]
    queries = [  # every answer non-empty and different from the others
        (p, list(answers)) for p, *answers in zip(drawn, *samples, strict=True)
        if all(a.strip() for a in answers) and len(set(answers)) == len(answers)
    ]  # fmt: skip
    what = {1: "answers to rate", 2: "pairs"}.get(cmd.num_answers, f"rankings of {cmd.num_answers} answers")
    require(
        bool(queries),
        "every sampled answer set was empty or repeated: raise --temperature or --max-new-tokens",
    )
    run_dir = create_run_dir(run_dir or default_run_dir("lm-pairs", "lm", cmd.seed), "lm-pairs", cmd)
    with PreferenceStore(run_dir / PREFERENCES_FILE) as store:
        for prompt, answers in queries:
            if cmd.num_answers == 1:
                store.add_text_rating(prompt, answers[0], cmd.rating_classes, cmd.redundancy)
            elif cmd.num_answers == 2:
                store.add_text_pair(prompt, answers[0], answers[1], cmd.redundancy)
            else:
                store.add_text_ranking(prompt, answers, cmd.redundancy)
        LabelQueue(store).set_budget(len(queries) * cmd.redundancy)
    console.print(f"{len(queries)} {what} for people in {run_dir / PREFERENCES_FILE}", soft_wrap=True)
    console.print(f"serve them: prefrl label {run_dir}", soft_wrap=True)
    console.print(
        f"learn from the answers: prefrl lm rm --model {cmd.model} --data {run_dir}", soft_wrap=True
    )
    return 0
