"""``prefrl lm sft|rm|ppo|dpo``: what the commands do once their input is parsed and checked.

Every check (paths, datasets, tokenizer, lengths, reward function) runs before the run directory is
created, so bad input writes nothing. A run directory holds config.json, metrics.jsonl, tb/,
checkpoints/last.pt (resumable) and model/ (``save_pretrained`` output, tokenizer included).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import torch
import tyro
from rich.console import Console

from prefrl.checkpoint import load_checkpoint
from prefrl.cli.logger import Logger, NullLogger
from prefrl.cli.loop import Bar, Checkpoints, run_loop
from prefrl.cli.run_dir import CHECKPOINT_FILE, create_run_dir, open_run_logger
from prefrl.lm import distributed
from prefrl.lm.data import load_records
from prefrl.lm.dpo import DPOConfig, DPOTrainer
from prefrl.lm.loading import load_causal_lm, load_function, load_tokenizer, model_path, save_model
from prefrl.lm.lora import AdaptersOff, LoRAConfig, apply_lora, merged
from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.rm_training import (
    NEAR_CHANCE,
    RMConfig,
    RMTrainer,
    evaluate_rm,
    is_ranking,
    shift_to_first_answers,
    split_held_out,
)
from prefrl.lm.sft import SFTConfig, SFTTrainer
from prefrl.validation import require

if TYPE_CHECKING:
    from accelerate import Accelerator

MODEL_DIR = "model"


@dataclass(frozen=True)
class Devices:
    """How several processes share the model, and the precision of its forward passes."""

    parallel: distributed.Parallel = "ddp"
    """With several processes (torchrun / accelerate launch): ddp replicates the model; fsdp (torch
    FSDP2) shards weights, gradients and optimizer state; zero1|zero2|zero3: DeepSpeed ZeRO's stages."""
    mixed_precision: distributed.MixedPrecision = "no"
    """bf16: forward passes under bfloat16 autocast (weights, optimizer, losses fp32); for GPUs."""
    grad_accum_steps: int = 1
    """SFT, reward model, DPO: each step's batch in this many parts, one forward and backward each:
    the same step in less memory (PPO's unit is its minibatch: lower --minibatch-size instead)."""


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


LMTrainer = SFTTrainer | RMTrainer | DPOTrainer | LMPPOTrainer


def lm_checkpoints(
    trainer: LMTrainer, path: Path, every: int, config: dict[str, Any], main: bool
) -> Checkpoints:
    """An LM run's checkpoints: every ``every`` steps (PPO: iterations), {"trainer", "global_step",
    "config"}; only the main process writes, and a sharded model's (or ZeRO's) state is gathered by
    every process."""
    every_steps = every * (trainer.config.batch_size if isinstance(trainer, LMPPOTrainer) else 1)
    return Checkpoints(
        path / CHECKPOINT_FILE,
        every_steps,
        state=lambda: {"trainer": trainer.state_dict(), "global_step": trainer.global_step, "config": config},
        write=main,
        collective=distributed.state_is_collective(trainer.model, trainer.optimizer),
    )


def make_accelerator() -> Any | None:
    """An ``accelerate.Accelerator`` when started by ``accelerate launch`` / ``torchrun`` with several
    processes (WORLD_SIZE > 1) or when a GPU is there (it places models and batches on it), else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not torch.cuda.is_available():
        return None
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())


def open_run(
    kind: str, command: Any, run_dir: Path | None, resume: Path | None, default: Path, main: bool = True
) -> tuple[Path, Logger, dict[str, Any] | None]:
    """Create the run directory (or reopen one to resume); (run_dir, logger, checkpoint state). Only
    the main process writes; the others get a NullLogger."""
    state = load_checkpoint(resume / CHECKPOINT_FILE) if resume is not None else None
    if not main:
        return resume or run_dir or default, NullLogger(), state
    if resume is not None and state is not None:
        return resume, open_run_logger(resume, resume_step=int(state["global_step"])), state
    run_dir = create_run_dir(run_dir or default, kind, command)
    return run_dir, open_run_logger(run_dir), None


def run_training(
    trainer: LMTrainer, run_dir: Path, logger: Logger, checkpoints: Checkpoints, bar: Bar, main: bool
) -> dict[str, float] | None:
    """The loop over an LM trainer; only the main process shows the bar (data parallelism)."""
    try:
        if trainer.done:
            bar.console.print(f"{run_dir} already finished")
            return {}
        agree = distributed.stop_agreement(trainer.accelerator)
        return run_loop(trainer, logger, checkpoints, bar if main else None, agree=agree)
    finally:
        logger.close()


def as_dict(command: Any) -> dict[str, Any]:
    return dataclasses.asdict(command)


def default_dir(kind: str, seed: int) -> Path:
    from prefrl.cli.run_dir import default_run_dir

    return default_run_dir(kind, "lm", seed)


def train_stage(
    name: str,
    cmd: Any,
    trainer: LMTrainer,
    run_dir: Path | None,
    resume: Path | None,
    console: Console,
    main: bool,
    progress: tuple[int, str, tuple[str, str], str],
) -> tuple[Path, int | None]:
    """What ``prefrl lm sft|rm|ppo|dpo`` share: open (or reopen) the run directory, restore the checkpoint,
    train with a progress bar of (total, label, (metric, short name), unit). Returns the run directory
    and the exit code to return now (stopped: 130; not the main process: 0), or None when the main
    process should save the model."""
    kind = f"lm-{name}"
    run_dir, logger, state = open_run(kind, cmd, run_dir, resume, default_dir(kind, cmd.config.seed), main)
    if state is not None:
        trainer.load_state_dict(state["trainer"])
    if main:
        _, world = distributed.rank_and_world(trainer.accelerator)
        shared = f" ({cmd.devices.parallel} over {world} processes)" if world > 1 else ""
        console.print(f"run directory: {run_dir}{shared}")
    checkpoints = lm_checkpoints(trainer, run_dir, cmd.checkpoint_every, as_dict(cmd), main)
    total, label, metric, unit = progress
    bar = Bar(console, total, label, metric[0], metric[1], unit, digits=2)
    if run_training(trainer, run_dir, logger, checkpoints, bar, main) is None:
        console.print(f"stopped; continue with [bold]prefrl lm {name} --resume {run_dir}[/bold]")
        return run_dir, 130
    return run_dir, None if main else 0


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
    records = load_records(cmd.data, "ranking" if is_ranking(cmd.data) else "preference", tokenizer)
    if cmd.eval_data is not None:
        ranking = is_ranking(cmd.eval_data)
        eval_records = load_records(cmd.eval_data, "ranking" if ranking else "preference", tokenizer)
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


def whole_model(model: Any, run_dir: Path, fresh: Callable[[], Any], key: str = "model") -> Any:
    """The trained model to save: itself, or for a sharded one a ``fresh`` copy loaded with the
    weights in the run's last checkpoint (written at the last step, it holds the whole model)."""
    if not distributed.is_sharded(model):
        return model
    whole = fresh()
    whole.load_state_dict(load_checkpoint(run_dir / CHECKPOINT_FILE)["trainer"][key])
    return whole


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
