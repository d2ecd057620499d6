"""``prefrl lm sft|rm|ppo|dpo``: what the commands do once their input is parsed and checked.

Every check (paths, datasets, tokenizer, lengths, reward function) runs before the run directory is
created, so bad input writes nothing. A run directory holds config.json, metrics.jsonl, tb/,
checkpoints/last.pt (resumable) and model/ (``save_pretrained`` output, tokenizer included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import tyro
from rich.console import Console

from prefrl.cli.lm_runs import MODEL_DIR, Devices, as_dict, make_accelerator, train_stage, whole_model
from prefrl.lm.dpo import DPOConfig, DPOTrainer
from prefrl.lm.loading import load_causal_lm, load_function, load_tokenizer, model_path, save_model
from prefrl.lm.lora import AdaptersOff, LoRAConfig, apply_lora, merged
from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer
from prefrl.lm.records import load_records
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rm_training import (
    NEAR_CHANCE,
    RMConfig,
    RMTrainer,
    answer_kind,
    evaluate_rm,
    shift_to_first_answers,
    split_held_out,
)
from prefrl.lm.sft import SFTConfig, SFTTrainer
from prefrl.validation import require

if TYPE_CHECKING:
    from accelerate import Accelerator


@dataclass(frozen=True)
class SFTCommand:
    """Supervised fine-tuning on {"prompt", "completion"} records (loss on the completion only)."""

    model: str
    """Causal LM: a local directory (save_pretrained) or a Hugging Face hub id."""
    data: str
    """Demonstrations: a .jsonl file, a save_to_disk directory or a dataset id (TRL's columns)."""
    config: Annotated[SFTConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=SFTConfig)
    checkpoint_every: int = 50
    """Save a resumable checkpoint every this many steps."""
    devices: Annotated[Devices, tyro.conf.OmitArgPrefixes] = field(default_factory=Devices)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    """LoRA adapters (--lora.rank > 0): only they train; the model is saved with them merged."""

    def validate(self) -> None:
        self.config.validate()
        self.lora.validate()


@dataclass(frozen=True)
class RMCommand:
    """Reward model on {"prompt", "chosen", "rejected"} records, or {"prompt", "completions"} rankings
    (best first; InstructGPT's K-way loss). The backbone starts from --model."""

    model: str
    """Causal LM or base model whose trunk becomes the reward model's backbone (path or hub id)."""
    data: str
    """Comparisons or rankings (.jsonl, save_to_disk directory or dataset id), or the run directory of
    `prefrl lm pairs` (the answers people gave in the labelling app)."""
    eval_data: str | None = None
    """Held-out comparisons for the accuracy printed at the end (and saved with the model)."""
    eval_fraction: float = 0.1
    """Without --eval-data: the share of --data held out for that accuracy (0: none; none below 20
    records). PPO warns when it is near chance."""
    config: Annotated[RMConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=RMConfig)
    checkpoint_every: int = 50
    """Save a resumable checkpoint every this many steps."""
    devices: Annotated[Devices, tyro.conf.OmitArgPrefixes] = field(default_factory=Devices)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    """LoRA adapters on the reward model's trunk (--lora.rank > 0; the head trains whole); saved merged."""

    def validate(self) -> None:
        self.config.validate()
        self.lora.validate()


@dataclass(frozen=True)
class DPOCommand:
    """Direct preference optimisation on {"prompt", "chosen", "rejected"} records: the policy learns
    the preferences itself, no reward model, no sampling (beta: the KL strength to the reference)."""

    model: str
    """Causal LM to train (path or hub id); its initial weights are the frozen reference."""
    data: str
    """Comparisons (.jsonl, save_to_disk directory or dataset id), or the run directory of `prefrl lm
    pairs` (the answers people gave in the labelling app)."""
    eval_data: str | None = None
    """Held-out comparisons for the implied-reward accuracy printed at the end."""
    config: Annotated[DPOConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=DPOConfig)
    checkpoint_every: int = 50
    """Save a resumable checkpoint every this many steps."""
    devices: Annotated[Devices, tyro.conf.OmitArgPrefixes] = field(default_factory=Devices)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    """LoRA adapters (--lora.rank > 0): only they train; the model is saved with them merged."""

    def validate(self) -> None:
        self.config.validate()
        self.lora.validate()


@dataclass(frozen=True)
class PPOLMCommand:
    """PPO-RLHF: the policy against a reward model (or a Python reward function), with a per-token
    KL penalty to the frozen initial policy."""

    policy: str
    """Causal LM to train (path or hub id); its initial weights are the frozen reference."""
    prompts: str
    """Prompts: any dataset with a 'prompt' column (.jsonl, directory or dataset id)."""
    reward_model: str | None = None
    """A reward-model directory written by `prefrl lm rm` (also initialises the critic)."""
    reward_fn: str | None = None
    """Instead of a reward model: 'module:function', called as f(prompts, responses) -> floats."""
    gold_fn: str | None = None
    """Optional 'module:function' logged as lm/gold_score (the true preference, never optimised)."""
    config: Annotated[LMPPOConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=LMPPOConfig)
    devices: Annotated[Devices, tyro.conf.OmitArgPrefixes] = field(default_factory=Devices)
    checkpoint_every: int = 10
    """Save a resumable checkpoint every this many iterations."""
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    """LoRA adapters (--lora.rank > 0): only they train; the model is saved with them merged."""

    def validate(self) -> None:
        self.config.validate()
        self.lora.validate()


def run_sft(cmd: SFTCommand, run_dir: Path | None, resume: Path | None, console: Console) -> int:
    """``prefrl lm sft``: every check first, then the run directory, then training."""
    tokenizer = load_tokenizer(cmd.model)
    records = load_records(cmd.data, "sft", tokenizer)
    model = apply_lora(load_causal_lm(cmd.model), cmd.lora)
    accelerator = make_accelerator()
    main = accelerator is None or accelerator.is_main_process
    trainer = SFTTrainer(
        model,
        tokenizer,
        records,
        cmd.config,
        accelerator,
        **as_dict(cmd.devices),
    )
    progress = (trainer.num_steps, "sft", ("lm/sft_loss", "loss"), "steps")
    run_dir, code = train_stage("sft", cmd, trainer, run_dir, resume, console, main, progress)
    if code is not None:
        return code
    model = whole_model(model, run_dir, lambda: load_causal_lm(cmd.model))
    save_model(merged(model), tokenizer, run_dir / MODEL_DIR)
    console.print(f"SFT model: {run_dir / MODEL_DIR}")
    return 0


def run_rm(cmd: RMCommand, run_dir: Path | None, resume: Path | None, console: Console) -> int:
    """``prefrl lm rm``: fit, shift so the chosen answers of the data score 0 on average, save."""
    require(0 <= cmd.eval_fraction <= 0.5, "eval_fraction must be in [0, 0.5]: fix --eval-fraction")
    tokenizer = load_tokenizer(cmd.model)
    records = load_records(cmd.data, answer_kind(cmd.data), tokenizer)
    if cmd.eval_data is not None:
        eval_records = load_records(cmd.eval_data, answer_kind(cmd.eval_data), tokenizer)
    else:
        records, eval_records = split_held_out(records, cmd.eval_fraction, cmd.config.seed)
    lm = load_causal_lm(cmd.model)
    model = ScalarRewardModel.from_causal_lm(lm)
    model.backbone = apply_lora(model.backbone, cmd.lora)
    accelerator = make_accelerator()
    main = accelerator is None or accelerator.is_main_process
    trainer = RMTrainer(
        model,
        tokenizer,
        records,
        cmd.config,
        accelerator,
        **as_dict(cmd.devices),
    )
    progress = (trainer.num_steps, "reward model", ("lm/rm_accuracy", "acc"), "steps")
    run_dir, code = train_stage("rm", cmd, trainer, run_dir, resume, console, main, progress)
    if code is not None:
        return code
    model = whole_model(model, run_dir, lambda: ScalarRewardModel.from_causal_lm(load_causal_lm(cmd.model)))
    model.backbone = merged(model.backbone)  # a plain trunk to save (and to score with from here)
    shift_to_first_answers(model, tokenizer, records)
    if eval_records:
        model.held_out_accuracy = evaluate_rm(model, tokenizer, eval_records)
        console.print(f"held-out accuracy: {model.held_out_accuracy:.3f} on {len(eval_records)} comparisons")
        if model.held_out_accuracy < NEAR_CHANCE:
            console.print(f"[bold red]warning:[/bold red] {near_chance(model.held_out_accuracy)}")
    save_model(model, tokenizer, run_dir / MODEL_DIR)
    console.print(f"reward model: {run_dir / MODEL_DIR}")
    return 0


def near_chance(accuracy: float) -> str:
    return (
        f"the reward model's held-out accuracy is {accuracy:.2f}, near chance: PPO against it would "
        "optimise noise; fit it on more (or cleaner) comparisons, or check the data's chosen/rejected order"
    )


def run_dpo(cmd: DPOCommand, run_dir: Path | None, resume: Path | None, console: Console) -> int:
    """``prefrl lm dpo``: every check first, then the run directory, then training."""
    from prefrl.cli.plots import plot_run

    tokenizer = load_tokenizer(cmd.model)
    records = load_records(cmd.data, "preference", tokenizer)
    eval_records = load_records(cmd.eval_data, "preference", tokenizer) if cmd.eval_data else None
    model = apply_lora(load_causal_lm(cmd.model), cmd.lora)
    reference = AdaptersOff(model) if cmd.lora.enabled else load_causal_lm(cmd.model)
    accelerator = make_accelerator()
    main = accelerator is None or accelerator.is_main_process
    trainer = DPOTrainer(
        model, tokenizer, records, cmd.config, reference, accelerator, **as_dict(cmd.devices)
    )
    progress = (trainer.num_steps, "dpo", ("lm/dpo_accuracy", "acc"), "steps")
    run_dir, code = train_stage("dpo", cmd, trainer, run_dir, resume, console, main, progress)
    if code is not None:
        return code
    model = whole_model(model, run_dir, lambda: load_causal_lm(cmd.model))
    if eval_records is not None:
        console.print(f"held-out accuracy (implied reward): {trainer.accuracy(eval_records):.3f}")
    save_model(merged(model), tokenizer, run_dir / MODEL_DIR)
    console.print(f"DPO policy: {run_dir / MODEL_DIR}; plot: {plot_run(run_dir)}")
    return 0


def build_ppo(cmd: PPOLMCommand, accelerator: Accelerator | None = None) -> LMPPOTrainer:
    """Load and check everything ``prefrl lm ppo`` needs (nothing is written)."""
    require(
        (cmd.reward_model is None) != (cmd.reward_fn is None),
        "give exactly one of --reward-model DIR and --reward-fn module:function",
    )
    tokenizer = load_tokenizer(cmd.policy)
    prompts = [r["prompt"] for r in load_records(cmd.prompts, "prompts", tokenizer)]
    policy = apply_lora(load_causal_lm(cmd.policy), cmd.lora)
    reward_model = None
    if cmd.reward_model is not None:
        reward_model = ScalarRewardModel.load(Path(model_path(cmd.reward_model)))
    reward_fn = load_function(cmd.reward_fn, "reward-fn") if cmd.reward_fn else None
    gold_fn = load_function(cmd.gold_fn, "gold-fn") if cmd.gold_fn else None
    trainer = LMPPOTrainer(
        policy,
        tokenizer,
        prompts,
        cmd.config,
        reward_model=reward_model,
        reward_fn=reward_fn,
        reference=AdaptersOff(policy) if cmd.lora.enabled else None,
        gold_fn=gold_fn,
        accelerator=accelerator,
        **as_dict(cmd.devices),
    )
    trainer.rollout()  # one dry rollout: a bad reward function fails here, before anything is written
    trainer.reseed()
    return trainer


def run_ppo_lm(cmd: PPOLMCommand, run_dir: Path | None, resume: Path | None, console: Console) -> int:
    """``prefrl lm ppo``."""
    from prefrl.cli.plots import plot_run

    accelerator = make_accelerator()
    main = accelerator is None or accelerator.is_main_process
    trainer = build_ppo(cmd, accelerator)
    accuracy = trainer.reward_model.held_out_accuracy if trainer.reward_model is not None else None
    if main and accuracy is not None and accuracy < NEAR_CHANCE:
        console.print(f"[bold red]warning:[/bold red] {near_chance(accuracy)}")
    total = cmd.config.num_iterations * cmd.config.batch_size
    metric = ("lm/gold_score", "gold") if cmd.gold_fn else ("lm/score", "score")
    run_dir, code = train_stage(
        "ppo", cmd, trainer, run_dir, resume, console, main, (total, "ppo", metric, "responses")
    )
    if code is not None:
        return code
    policy = whole_model(trainer.policy, run_dir, lambda: load_causal_lm(cmd.policy), "policy")
    save_model(merged(policy), trainer.tokenizer, run_dir / MODEL_DIR)
    console.print(f"policy: {run_dir / MODEL_DIR}; plot: {plot_run(run_dir)}")
    return 0
