"""``prefrl lm sft|rm|ppo|dpo|pairs|pipeline|coding``: parse, check, dispatch. ``--resume RUN_DIR``
alone continues a run with its saved command."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import tyro
from rich.console import Console

from prefrl.cli.lm_commands import (
    DPOCommand,
    PPOLMCommand,
    RMCommand,
    SFTCommand,
    run_dpo,
    run_ppo_lm,
    run_rm,
    run_sft,
)
from prefrl.cli.lm_pairs import PairsCommand, run_pairs
from prefrl.cli.run_dir import read_run
from prefrl.lm import distributed, zero
from prefrl.lm.coding_hack import CodingHackConfig
from prefrl.lm.pipeline import PipelineConfig
from prefrl.validation import config_from_dict, deferred_validation, require

COMMANDS: dict[str, tuple[str, type, str]] = {
    "sft": ("lm-sft", SFTCommand, "supervised fine-tuning on prompt/completion records"),
    "rm": ("lm-rm", RMCommand, "reward model from prompt/chosen/rejected (or K-way rankings)"),
    "ppo": (
        "lm-ppo",
        PPOLMCommand,
        "PPO-RLHF, RLOO, GRPO, REINFORCE++ against a reward model or function",
    ),
    "dpo": ("lm-dpo", DPOCommand, "direct preference optimisation on prompt/chosen/rejected records"),
    "pairs": ("lm-pairs", PairsCommand, "put a model's answers before people: pairs for the labelling app"),
    "pipeline": ("lm-pipeline", PipelineConfig, "offline default: SFT -> labels -> RM -> PPO on a tiny task"),
    "coding": ("lm-coding", CodingHackConfig, "reward hacking: a coding agent special-cases the tests"),
}


@dataclass(frozen=True)
class RunOptions:
    run_dir: Path | None = None
    """Run directory to create (default: runs/KIND-lm-sSEED-DATE-TIME)."""
    resume: Path | None = None
    """Continue the run in this directory from its last checkpoint (pass no other flag)."""
    torch_threads: int = 1
    """Torch CPU threads (1 is fastest for the tiny model on a busy 2-core machine)."""


def _usage() -> str:
    lines = ["usage: prefrl lm COMMAND [--help] [flags]", "", "commands:"]
    return "\n".join(lines + [f"  {name:<9} {text}" for name, (_, _, text) in COMMANDS.items()])


OPTIONS_HELP = (
    "Run options: --run-dir DIR (default runs/KIND-lm-sSEED-DATE-TIME), --resume RUN_DIR (continue a run "
    "from its last checkpoint; pass no other flag), --torch-threads N (default 1)."
)


def split_options(argv: list[str]) -> tuple[RunOptions, list[str]]:
    """Pull the run options out of ``argv``; the rest goes to the command's own parser."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--run-dir", "--run_dir", type=Path, default=None)
    pre.add_argument("--resume", type=Path, default=None)
    pre.add_argument("--torch-threads", "--torch_threads", type=int, default=1)
    known, rest = pre.parse_known_args(argv)
    options = RunOptions(known.run_dir, known.resume, known.torch_threads)
    require(options.torch_threads >= 1, "torch_threads must be >= 1: fix --torch-threads")
    return options, rest


RENAMED = {"num_ppo_epochs": "update_epochs", "whiten_advantages": "norm_adv"}
"""LM PPO settings renamed to the gymnasium PPO's names (one vocabulary for both)."""


def upgrade_saved(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved command in today's form: ``fsdp: bool`` (before DeepSpeed) became ``devices.parallel``;
    LM PPO's ``num_ppo_epochs``, ``whiten_advantages`` and ``value_clip_coef`` became ``update_epochs``,
    ``norm_adv`` and ``clip_vloss`` (clipping by ``clip_coef``), in the command or its nested configs."""
    if "fsdp" in saved:
        saved = {k: v for k, v in saved.items() if k != "fsdp"} | {
            "devices": {"parallel": "fsdp" if saved["fsdp"] else "ddp"}
        }
    saved = {RENAMED.get(k, k): upgrade_saved(v) if isinstance(v, dict) else v for k, v in saved.items()}
    if "value_clip_coef" in saved:
        clip = saved.pop("value_clip_coef")
        require(
            clip is None or clip == saved.get("clip_coef", 0.2),
            f"this run clipped the value loss by {clip}, not by clip_coef; this prefrl clips it by "
            "clip_coef only: resume it with the prefrl version that started it",
        )
        saved["clip_vloss"] = clip is not None
    return saved


def parse(argv: list[str]) -> tuple[str, Any, RunOptions]:
    name = argv[0]
    kind, cls, _ = COMMANDS[name]
    options, rest = split_options(argv[1:])
    if options.resume is not None:
        require(
            not rest and options.run_dir is None,
            "--resume RUN_DIR continues a run with its saved config: pass no other flag",
        )
        _, saved = read_run(options.resume, kind=kind)
        if kind == "lm-rm":  # runs from before the held-out split trained on all of --data
            saved = {"eval_fraction": 0.0, **saved}
        return name, config_from_dict(cls, upgrade_saved(saved)), options
    with deferred_validation():
        command: Any = tyro.cli(
            cls, args=rest, prog=f"prefrl lm {name}", description=f"{cls.__doc__}\n\n{OPTIONS_HELP}"
        )
    command.validate()
    return name, command, options


def main(argv: list[str], console: Console) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] not in COMMANDS:
        raise ValueError(f"unknown command 'lm {argv[0]}': pick one of {', '.join(COMMANDS)}")
    name, command, options = parse(argv)
    torch.set_num_threads(options.torch_threads)
    zero.name_cpu_accelerator()
    if name == "pipeline":
        from prefrl.cli.lm_pipeline import run_pipeline

        return run_pipeline(command, options.run_dir, console, options.resume)
    if name == "coding":
        from prefrl.cli.lm_coding import run_coding

        return run_coding(command, options.run_dir, console, options.resume)
    runner: Any = {"sft": run_sft, "rm": run_rm, "ppo": run_ppo_lm, "dpo": run_dpo, "pairs": run_pairs}[name]
    try:
        return runner(command, options.run_dir, options.resume, console)
    finally:
        distributed.finish()
