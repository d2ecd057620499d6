"""DPO, RLOO and GRPO, prefrl vs TRL, side by side on CPU (1 torch thread), from one SFT checkpoint.

Both sides start from one checkpoint: the tiny GPT-2 of the offline task (``tiny_task.build_tokenizer``,
``build_tiny_model``), SFT'd briefly (1500 demonstrations, 2 epochs, ``prefrl.lm.sft.SFTTrainer``) and
saved with ``save_pretrained``; each run of either library loads it from there (not timed), in a fresh
process of its own.

1. DPO (``prefrl.lm.dpo.DPOTrainer`` vs TRL's ``DPOTrainer``): the same comparisons (SFT samples of 1000
   prompts, labelled by the hidden gold score with ``pipeline.collect_pairs`` + ``pipeline.label``;
   ties dropped, 20% held out), batch 32, beta 0.1, sigmoid loss, learning rate 1e-3 (constant, AdamW
   without weight decay, gradient clipping at 1), ``--dpo-steps`` steps. Prints comparisons/s over the
   steps after the first, and end to end (trainer set-up: tokenising, the reference's log-probs; then
   every step). Quality: the held-out implied-reward accuracy (the share of held-out comparisons whose
   chosen answer has the higher beta * log pi/pi_ref), reference = the SFT checkpoint, computed for
   both trained policies by one function of this file (and, for prefrl, also by
   ``DPOTrainer.accuracy``, as a check of that function).
2. RLOO and 3. GRPO (``prefrl.lm.ppo.LMPPOTrainer`` with ``LMPPOConfig(estimator="rloo" | "grpo",
   group_size=8, batch_size=32, minibatch_size=8, update_epochs=1, max_new_tokens=24, kl_coef=0.05,
   learning_rate=3e-4)`` vs TRL's ``RLOOTrainer`` / ``GRPOTrainer``): the reward is the Python function
   ``prefrl.lm.pipeline.gold_fn`` on both sides (no reward model), 32 completions per iteration (4
   prompts from ``tiny_task.sample_prompts`` x 8), completions of at most 24 tokens at temperature 1,
   KL weight 0.05 (RLOO: k1 per token, summed, in the reward; GRPO: k3 per token in the loss), one pass
   over each batch in 4 optimizer steps of 8 completions, PPO clip 0.2, Adam eps 1e-5, ``--rl-steps``
   iterations. Prints completion tokens/s end to end (sampling, scoring, update), timed from the end
   of the first iteration to the end of the last; each library's tokens are counted from its own
   samples, up to and including EOS. Quality: the mean gold score of the training samples over the
   last ``--last`` iterations, and, for both trained policies by the same code, the gold score of 256
   samples on fixed prompts and their KL(pi || pi_SFT) (summed over tokens, sampled estimate).

Every run of each library is repeated for ``--seeds`` (default 1 2 3; the libraries interleaved, each
run in a fresh process): rates are means over seeds, quality numbers the mean and each seed's value.
The seed changes each library's data order and sampling, not the SFT checkpoint or the data.
Defaults (100 DPO steps, about 4.6 passes over the comparisons; 60 RLOO / GRPO iterations; 3 seeds)
take about 4 minutes on 2 CPU cores; ``--dpo-steps 30 --rl-steps 10 --seeds 1`` about 1.

Equal on both sides: the checkpoint, tokenizer and tokens (TRL's tokenised DPO data is checked
against prefrl's: prompt ids, answer ids + EOS), the data, batch shapes, optimizer (fused Adam(W),
no weight decay, eps 1e-8 for DPO and 1e-5 for RL, as prefrl's), constant learning rate, gradient
clipping at 1, the DPO loss, the reward, sampling settings, KL weight and estimator, fp32, dropout off,
1 torch thread. TRL settings that are not its defaults, to get there: ``bf16=False`` and
``gradient_checkpointing=False`` (TRL's defaults are on), ``lr_scheduler_type="constant"`` (linear),
``disable_dropout=True`` for RLOO / GRPO, ``beta=0.05`` for GRPO (0), ``loss_type="bnpo"`` for GRPO
(``"dapo"``; bnpo is the minibatch's token mean, as prefrl's), ``dataloader_drop_last=True`` for DPO
(prefrl trains on whole batches only), ``precompute_ref_log_probs=True`` for DPO (prefrl scores the
reference once, in its set-up; TRL's default, a reference forward in every step, is the extra row
"TRL (ref per step)"). By hand: prefrl's default ``eos_penalty=-1`` (a completion that never ends
scores -1) has no TRL option, so TRL's reward function applies the same rule to its
``completion_ids``; both sides therefore optimise the same reward.

Not equal:

- data order and sampling streams (each library's own seeding), so single runs differ by noise;
- RLOO's policy loss: prefrl clips the per-token ratio and averages over the minibatch's tokens; TRL's
  RLOOTrainer clips the ratio of whole sequences and averages over sequences (no option);
- sampling: prefrl's own KV-cached loop vs ``transformers.generate`` (TRL), each generating the 32
  completions of an iteration at once;
- each library's own bookkeeping in the timed loop (TRL's Trainer, dataloader and metrics, e.g. DPO's
  entropy and token accuracy; prefrl's metrics).

Set-up (TRL in its own virtual environment; trl 1.16.0 installs with the transformers ours has, 5.25
today; tyro because this file imports prefrl there):

    python3 -m venv /tmp/trl-new
    PIP_CONSTRAINT=$PWD/constraints.txt /tmp/trl-new/bin/pip install "trl==1.16.*" datasets accelerate tyro
    .venv/bin/python benchmarks/lm_methods_vs_trl.py --trl-python /tmp/trl-new/bin/python

The TRL side runs this same file with ``--impl trl`` (it imports only ``prefrl.lm.pipeline.gold_fn``,
the reward, from prefrl); the data and models pass through ``--work`` (JSONL files and saved models).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

BATCH = 32  # DPO comparisons per step; RLOO / GRPO completions per iteration
DPO_BETA, DPO_LR = 0.1, 1e-3
GROUP, MINIBATCH, CAP, KL_COEF, RL_LR, ADAM_EPS, EOS_PENALTY = 8, 8, 24, 0.05, 3e-4, 1e-5, -1.0
STEPS_PER_BATCH = BATCH // MINIBATCH  # optimizer steps per RL iteration (one pass)
EVAL_PROMPTS = 256


# ---------------------------------------------------------------------------------------- data


def make_data(work: Path) -> None:
    """The SFT'd policy (work/policy), DPO's comparisons (work/dpo_train.jsonl, dpo_held_out.jsonl),
    RL prompts (work/prompts.json) and evaluation prompts (work/eval_prompts.json)."""
    from prefrl.lm import pipeline, tiny_task
    from prefrl.lm.pipeline import PipelineConfig
    from prefrl.lm.sft import SFTConfig, SFTTrainer

    tokenizer = tiny_task.build_tokenizer(work / "policy")
    model = tiny_task.build_tiny_model(tokenizer, seed=0)
    sft = SFTTrainer(model, tokenizer, tiny_task.sft_records(random.Random(0), 1500), SFTConfig(num_epochs=2))
    while not sft.done:
        sft.train_iteration()
    model.save_pretrained(str(work / "policy"))
    config = PipelineConfig(num_labels=1000)  # pairs of SFT samples: seeded by config.seed
    train, held_out = pipeline.label(pipeline.collect_pairs(model, tokenizer, config), config)
    write_jsonl(work / "dpo_train.jsonl", train)
    write_jsonl(work / "dpo_held_out.jsonl", held_out)
    (work / "prompts.json").write_text(json.dumps(tiny_task.sample_prompts(random.Random(1), 512)))
    (work / "eval_prompts.json").write_text(
        json.dumps(tiny_task.sample_prompts(random.Random(2), EVAL_PROMPTS))
    )


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path)), AutoModelForCausalLM.from_pretrained(str(path))


# ------------------------------------------------------------------------------------ prefrl side


def prefrl_dpo(work: Path, steps: int, seed: int, out: Path) -> dict[str, Any]:
    from prefrl.lm.dpo import DPOConfig, DPOTrainer

    tokenizer, policy = load(work / "policy")
    _, reference = load(work / "policy")
    train = read_jsonl(work / "dpo_train.jsonl")
    config = DPOConfig(
        beta=DPO_BETA,
        learning_rate=DPO_LR,
        batch_size=BATCH,
        num_epochs=steps * BATCH / len(train),
        seed=seed,
    )
    start = time.perf_counter()
    trainer = DPOTrainer(policy, tokenizer, train, config, reference=reference)
    setup = time.perf_counter() - start
    marks = []
    for _ in range(steps):
        trainer.train_iteration()
        marks.append(time.perf_counter())
    result = dpo_rates(start, setup, marks)
    result["accuracy_prefrl_method"] = trainer.accuracy(read_jsonl(work / "dpo_held_out.jsonl"))
    policy.save_pretrained(str(out))
    return result


PHASES = ("generate", "score", "update")
"""prefrl's iteration phases (its ``time/<phase>_s`` metrics): sampling, scoring, the update."""


def prefrl_rl(work: Path, method: str, steps: int, seed: int, out: Path) -> dict[str, Any]:
    from prefrl.lm import pipeline
    from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer

    tokenizer, policy = load(work / "policy")
    config = LMPPOConfig(
        estimator=method, group_size=GROUP, batch_size=BATCH, minibatch_size=MINIBATCH, update_epochs=1,
        max_new_tokens=CAP, kl_coef=KL_COEF, learning_rate=RL_LR, eos_penalty=EOS_PENALTY,
        num_iterations=steps, seed=seed,
    )  # fmt: skip
    prompts = json.loads((work / "prompts.json").read_text())
    trainer = LMPPOTrainer(policy, tokenizer, prompts, config, reward_fn=pipeline.gold_fn)
    marks, gold, tokens, updates = [], [], 0.0, 0.0
    phases = dict.fromkeys(PHASES, 0.0)
    for step in range(steps):
        metrics = trainer.train_iteration()
        for phase in PHASES if step else ():  # the timed iterations: after the first
            phases[phase] += metrics[f"time/{phase}_s"]
        tokens += metrics["lm/response_length"] * BATCH
        marks.append((time.perf_counter(), tokens))
        gold.append(metrics["lm/score"])  # the reward function's mean, before the EOS penalty: the gold score
        updates += metrics["lm/num_updates"]
    policy.save_pretrained(str(out))
    return {**rl_rates(marks), "gold_per_iteration": gold, "optimizer_steps": updates, "phase_s": phases}


# --------------------------------------------------------------------------------------- TRL side


def trl_common(work: Path, seed: int) -> dict[str, Any]:
    """TrainingArguments both TRL trainers get: fp32 on the CPU, no checkpointing, no logging, constant LR."""
    return {
        "output_dir": str(work / "trl_out"),
        "use_cpu": True,
        "bf16": False,
        "gradient_checkpointing": False,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 10**6,
        "disable_tqdm": True,
        "seed": seed,
    }


def step_marks(on_mark: Callable[[], None], every: int = 1) -> Any:
    """A TRL callback calling ``on_mark`` after every ``every``-th optimizer step."""
    from transformers import TrainerCallback

    class Marks(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step % every == 0:
                on_mark()

    return Marks()


def trl_dpo(work: Path, steps: int, seed: int, out: Path, ref_mode: str) -> dict[str, Any]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    tokenizer, policy = load(work / "policy")
    _, reference = load(work / "policy")
    # TRL tokenises prompt + answer as one string: the space keeps the word-level tokens apart (checked below)
    train = read_jsonl(work / "dpo_train.jsonl")
    dataset = Dataset.from_list(
        [{"prompt": r["prompt"], "chosen": " " + r["chosen"], "rejected": " " + r["rejected"]} for r in train]
    )
    args = DPOConfig(
        **trl_common(work, seed),
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=1,
        dataloader_drop_last=True,  # as prefrl: whole batches only
        max_steps=steps,
        learning_rate=DPO_LR,
        adam_epsilon=1e-8,
        beta=DPO_BETA,
        loss_type=["sigmoid"],
        precompute_ref_log_probs=ref_mode == "precompute",
        precompute_ref_batch_size=64,
    )
    start = time.perf_counter()
    trainer = DPOTrainer(
        model=policy, ref_model=reference, args=args, train_dataset=dataset, processing_class=tokenizer
    )
    setup = time.perf_counter() - start
    marks: list[float] = []
    trainer.add_callback(step_marks(lambda: marks.append(time.perf_counter())))
    trainer.train()
    check_trl_tokens(tokenizer, train, trainer.train_dataset)
    if len(marks) != steps:
        raise SystemExit(f"TRL took {len(marks)} DPO steps, not {steps}")
    trainer.model.save_pretrained(str(out))
    return dpo_rates(start, setup, marks)


def check_trl_tokens(tokenizer: Any, records: list[dict[str, Any]], dataset: Any) -> None:
    """TRL's tokens of each comparison are prefrl's: prompt ids, answer ids + EOS."""
    eos = tokenizer.eos_token_id
    for record, row in zip(records, dataset, strict=True):
        want = [
            tokenizer(record[k], add_special_tokens=False)["input_ids"]
            for k in ("prompt", "chosen", "rejected")
        ]
        got = [row["prompt_ids"], row["chosen_ids"], row["rejected_ids"]]
        if got != [want[0], [*want[1], eos], [*want[2], eos]]:
            raise SystemExit(f"TRL tokenised {record} as {got}, prefrl as {want} (+ EOS)")


class _Samples:
    """What TRL's completions were: tokens (up to and including EOS) and gold score per iteration."""

    eos = -1
    tokens = 0.0
    gold: list[float] = []  # noqa: RUF012


def trl_reward(
    prompts: list[str], completions: list[str], completion_ids: list[list[int]], **_: Any
) -> list[float]:
    """prefrl's gold_fn, with prefrl's EOS penalty (a completion without EOS scores EOS_PENALTY)."""
    from prefrl.lm.pipeline import gold_fn

    gold = gold_fn(prompts, completions)
    _Samples.tokens += sum(len(ids) for ids in completion_ids)
    _Samples.gold.append(sum(gold) / len(gold))
    ended = [bool(ids) and ids[-1] == _Samples.eos for ids in completion_ids]
    return [g if e else EOS_PENALTY for g, e in zip(gold, ended, strict=True)]


def trl_rl(work: Path, method: str, steps: int, seed: int, out: Path) -> dict[str, Any]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    tokenizer, _ = load(work / "policy")
    _Samples.eos = tokenizer.eos_token_id
    prompts = json.loads((work / "prompts.json").read_text())
    settings: dict[str, Any] = {
        **trl_common(work, seed),
        "per_device_train_batch_size": MINIBATCH,  # one optimizer step per 8 completions,
        "gradient_accumulation_steps": 1,
        "steps_per_generation": STEPS_PER_BATCH,  # 4 of them per generated batch of 32 (4 prompts x 8)
        "num_iterations": 1,  # one pass over each batch
        "num_generations": GROUP,
        "max_completion_length": CAP,
        "temperature": 1.0,
        "beta": KL_COEF,
        "epsilon": 0.2,
        "learning_rate": RL_LR,
        "adam_epsilon": ADAM_EPS,
        "disable_dropout": True,
        "max_steps": steps * STEPS_PER_BATCH,
    }
    if method == "grpo":
        config, trainer_class = GRPOConfig(**settings, loss_type="bnpo", scale_rewards="group"), GRPOTrainer
    else:
        config, trainer_class = RLOOConfig(**settings, normalize_advantages=False), RLOOTrainer
    trainer = trainer_class(
        model=str(work / "policy"),  # TRL loads the policy and its reference from the checkpoint
        reward_funcs=[trl_reward],
        args=config,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tokenizer,
    )
    marks: list[tuple[float, float]] = []
    trainer.add_callback(
        step_marks(lambda: marks.append((time.perf_counter(), _Samples.tokens)), STEPS_PER_BATCH)
    )
    trainer.train()
    if len(marks) != steps or len(_Samples.gold) != steps:
        raise SystemExit(f"TRL ran {len(marks)} iterations ({len(_Samples.gold)} scored), not {steps}")
    trainer.model.save_pretrained(str(out))
    return {
        **rl_rates(marks),
        "gold_per_iteration": _Samples.gold,
        "optimizer_steps": float(trainer.state.global_step),
    }


# ---------------------------------------------------------------------------------- measurements


def dpo_rates(start: float, setup: float, marks: list[float]) -> dict[str, Any]:
    """Steps timed after the first; end to end from the trainer's construction (after model loading)."""
    steps = len(marks)
    return {
        "setup_s": setup,
        "train_s": marks[-1] - start,
        "comparisons_per_s": (steps - 1) * BATCH / (marks[-1] - marks[0]),
        "comparisons_per_s_end_to_end": steps * BATCH / (marks[-1] - start),
    }


def rl_rates(marks: list[tuple[float, float]]) -> dict[str, Any]:
    """From (time, completion tokens so far) after each iteration: over all iterations after the first."""
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    iterations = len(marks) - 1
    return {
        "seconds": t1 - t0,
        "tokens_per_s": (n1 - n0) / (t1 - t0),
        "completions_per_s": iterations * BATCH / (t1 - t0),
        "mean_length": (n1 - n0) / (iterations * BATCH),
    }


def sequence_logps(model: Any, tokenizer: Any, prompts: list[str], answers: list[str]) -> Any:
    """(N,) summed log-probs of each answer + EOS after its prompt, unpadded one at a time (this file's
    own implementation, for both libraries' policies)."""
    import torch

    eos, out = tokenizer.eos_token_id, []
    for prompt, answer in zip(prompts, answers, strict=True):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a = [*tokenizer(answer, add_special_tokens=False)["input_ids"], eos]
        ids = torch.tensor([p + a])
        logits = model(input_ids=ids).logits[0, len(p) - 1 : -1].float()
        out.append(torch.log_softmax(logits, -1).gather(1, torch.tensor(a)[:, None]).sum())
    return torch.stack(out)


def implied_accuracy(policy: Any, reference: Any, tokenizer: Any, records: list[dict[str, Any]]) -> float:
    """Share of ``records`` whose chosen answer has the higher implied reward log pi/pi_ref."""
    import torch

    prompts = [r["prompt"] for r in records]
    with torch.no_grad():
        implied = {
            k: sequence_logps(policy, tokenizer, prompts, [r[k] for r in records])
            - sequence_logps(reference, tokenizer, prompts, [r[k] for r in records])
            for k in ("chosen", "rejected")
        }
    return float((implied["chosen"] > implied["rejected"]).float().mean())


def gold_and_kl(
    policy: Any, reference: Any, tokenizer: Any, prompts: list[str], seed: int
) -> tuple[float, float]:
    """Mean gold score of one sample per prompt and its mean summed KL(pi || reference)."""
    import torch

    from prefrl.lm import pipeline, token_mdp
    from prefrl.lm.data import batch_from_tensors, encode, left_pad
    from prefrl.lm.generation import response_logprobs, sample

    policy.eval()
    p_ids, p_mask = left_pad(encode(tokenizer, prompts), tokenizer.pad_token_id)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    with torch.no_grad():
        responses, mask = sample(
            policy, p_ids, p_mask, CAP, eos, pad, 1.0, torch.Generator().manual_seed(seed)
        )
        batch = batch_from_tensors(p_ids, p_mask, responses, mask)
        kl = token_mdp.per_token_kl(
            response_logprobs(policy, batch), response_logprobs(reference, batch), mask
        )
    texts = tokenizer.batch_decode(
        torch.where(mask & (responses != eos), responses, pad), skip_special_tokens=True
    )
    gold = pipeline.gold_fn(prompts, texts)
    return sum(gold) / len(gold), float(kl.sum(1).mean())


def evaluate(work: Path, method: str, out: Path, seed: int) -> dict[str, float]:
    """The trained policy in ``out``, by the same code for both libraries."""
    tokenizer, reference = load(work / "policy")
    _, policy = load(out)
    if method == "dpo":
        held_out = read_jsonl(work / "dpo_held_out.jsonl")
        return {"accuracy": implied_accuracy(policy, reference, tokenizer, held_out)}
    prompts = json.loads((work / "eval_prompts.json").read_text())
    gold, kl = gold_and_kl(policy, reference, tokenizer, prompts, seed + 7)
    return {"eval_gold": gold, "eval_kl": kl}


# -------------------------------------------------------------------------------------------- main


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One run of one library (``--impl prefrl | trl``), in this process."""
    import torch

    torch.set_num_threads(1)
    out = args.work / "runs" / args.run_name
    if args.method == "dpo":
        steps = args.dpo_steps
        if args.impl == "prefrl":
            result = prefrl_dpo(args.work, steps, args.seed, out)
        else:
            result = trl_dpo(args.work, steps, args.seed, out, args.dpo_ref)
    else:
        run = prefrl_rl if args.impl == "prefrl" else trl_rl
        result = run(args.work, args.method, args.rl_steps, args.seed, out)
    import transformers

    result["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    if args.impl == "trl":
        import trl

        result["versions"]["trl"] = trl.__version__
    result["torch_threads"] = torch.get_num_threads()
    return result


def variants(method: str, trl_python: str) -> list[tuple[str, str, list[str]]]:
    """(row label, python, extra arguments) of the runs of ``method``."""
    rows: list[tuple[str, str, list[str]]] = [("prefrl", sys.executable, []), ("TRL", trl_python, [])]
    if method == "dpo":
        rows.append(("TRL (ref per step)", trl_python, ["--dpo-ref", "per-step"]))
    return rows


def run_child(
    args: argparse.Namespace, impl: str, python: str, method: str, name: str, extra: list[str]
) -> Any:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    cmd = [
        python, __file__, "--impl", "prefrl" if impl == "prefrl" else "trl", "--method", method,
        "--work", str(args.work), "--run-name", name,
        "--dpo-steps", str(args.dpo_steps), "--rl-steps", str(args.rl_steps), *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stdout[-2000:]}\n{out.stderr[-6000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def mean(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.mean(r[key] for r in runs)


def cell(runs: list[dict[str, Any]], key: str, digits: int = 2) -> str:
    """The mean over seeds, and each seed's value when there are several."""
    text = f"{mean(runs, key):.{digits}f}"
    if len(runs) > 1:
        text += " (" + ", ".join(f"{r[key]:.{digits}f}" for r in runs) + ")"
    return text


def dpo_table(rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = [
        "| DPO | comparisons/s (steps 2..N) | end to end (set-up + steps) | set-up s | held-out accuracy |",
        "|---|---|---|---|---|",
    ]
    for label, runs in rows.items():
        check = ""
        if "accuracy_prefrl_method" in runs[0]:
            check = f"; DPOTrainer.accuracy: {cell(runs, 'accuracy_prefrl_method', 3)}"
        lines.append(
            f"| {label} | {mean(runs, 'comparisons_per_s'):.0f} | "
            f"{mean(runs, 'comparisons_per_s_end_to_end'):.0f} | {mean(runs, 'setup_s'):.2f} | "
            f"{cell(runs, 'accuracy', 3)}{check} |"
        )
    base = rows["prefrl"]
    for label, runs in rows.items():
        if label != "prefrl":
            ratio = mean(base, "comparisons_per_s") / mean(runs, "comparisons_per_s")
            end_to_end = mean(base, "comparisons_per_s_end_to_end") / mean(
                runs, "comparisons_per_s_end_to_end"
            )
            lines.append(f"prefrl / {label} comparisons/s: {ratio:.2f}x (end to end {end_to_end:.2f}x)")
    return lines


def rl_table(method: str, rows: dict[str, list[dict[str, Any]]], last: int) -> list[str]:
    lines = [
        f"| {method.upper()} | completion tokens/s | completions/s | mean length | gold, iteration 1 | "
        f"gold, last {last} iterations | eval gold ({EVAL_PROMPTS} samples) | eval KL to SFT |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, runs in rows.items():
        for r in runs:
            r["gold_first"] = r["gold_per_iteration"][0]
            r["gold_last"] = statistics.mean(r["gold_per_iteration"][-last:])
        lines.append(
            f"| {label} | {mean(runs, 'tokens_per_s'):.0f} | {mean(runs, 'completions_per_s'):.1f} | "
            f"{mean(runs, 'mean_length'):.1f} | {cell(runs, 'gold_first')} | {cell(runs, 'gold_last')} | "
            f"{cell(runs, 'eval_gold')} | {cell(runs, 'eval_kl')} |"
        )
    ratio = mean(rows["prefrl"], "tokens_per_s") / mean(rows["TRL"], "tokens_per_s")
    lines.append(f"prefrl / TRL completion tokens/s ({method.upper()}): {ratio:.2f}x")
    totals = {p: sum(r["phase_s"][p] for r in rows["prefrl"]) for p in PHASES}
    shares = ", ".join(f"{p} {totals[p] / sum(totals.values()):.0%}" for p in PHASES)
    lines.append(f"prefrl's time per phase ({method.upper()}): {shares}")
    return lines


def table(results: dict[str, list[dict[str, Any]]], last: int) -> str:
    lines: list[str] = []
    for method in ("dpo", "rloo", "grpo"):
        rows = {k.split("/", 1)[1]: v for k, v in results.items() if k.startswith(f"{method}/")}
        if rows:
            lines += ["", *(dpo_table(rows) if method == "dpo" else rl_table(method, rows, last))]
    return "\n".join(lines)


def run_all(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Every method x library x seed, each in its own process, the libraries interleaved; then the
    same evaluation of each trained policy."""
    results: dict[str, list[dict[str, Any]]] = {}
    for seed in args.seeds:
        for method in args.methods:
            for label, python, extra in variants(method, args.trl_python):
                name = f"{method}-{label.split()[0].lower()}{'-per-step' if extra else ''}-seed{seed}"
                result = run_child(args, label, python, method, name, [*extra, "--seed", str(seed)])
                result.update(evaluate(args.work, method, args.work / "runs" / name, seed))
                results.setdefault(f"{method}/{label}", []).append(result)
                print(f"seed {seed} {method} {label}: {result['process_s']:.0f} s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    methods = ["dpo", "rloo", "grpo"]
    parser.add_argument("--impl", choices=["both", "prefrl", "trl"], default="both")
    parser.add_argument("--methods", nargs="+", choices=methods, default=methods)
    parser.add_argument("--trl-python", default="/tmp/trl-new/bin/python")
    parser.add_argument("--work", type=Path, default=Path("/tmp/prefrl-methods-bench"))
    parser.add_argument("--dpo-steps", type=int, default=100)
    parser.add_argument("--rl-steps", type=int, default=60)
    parser.add_argument("--last", type=int, default=5, help="iterations the training gold is averaged over")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="runs of each, interleaved")
    parser.add_argument("--output", type=Path, help="write every number as JSON (default: WORK/results.json)")
    parser.add_argument("--method", choices=methods, help=argparse.SUPPRESS)  # one run: --impl prefrl | trl
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument(
        "--dpo-ref", choices=["precompute", "per-step"], default="precompute", help=argparse.SUPPRESS
    )
    parser.add_argument("--run-name", default="run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.impl != "both":
        print(json.dumps(child(args)))
        return
    import torch

    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    make_data(args.work)
    print(f"data: SFT checkpoint and comparisons in {time.perf_counter() - start:.0f} s", flush=True)
    results = run_all(args)
    output = args.output or args.work / "results.json"
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    output.write_text(json.dumps({"settings": settings, "results": results}, indent=1))
    runs = [r for rs in results.values() for r in rs]
    versions = {k: v for r in runs for k, v in r["versions"].items()}
    threads = sorted({r["torch_threads"] for r in runs})
    print(f"\n{versions}; torch threads per run: {threads}; seeds {args.seeds} (mean, then each seed)")
    print(f"DPO: {args.dpo_steps} steps of {BATCH}; RLOO / GRPO: {args.rl_steps} iterations of {BATCH}")
    print(table(results, args.last))
    print(f"\nwrote {output}; {time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
