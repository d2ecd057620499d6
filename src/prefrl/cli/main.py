"""The ``prefrl`` command line: ``ppo``, ``rlhp``, ``label``, ``demo``, ``plot``, ``video``, ``lm``.

Each subcommand is a frozen dataclass that tyro turns into flags. Bad input ends in one line on
stderr that says what to do (exit code 2), before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar, cast

import tyro
from rich.console import Console

from prefrl.ppo.config import PPOConfig
from prefrl.rlhp import RLHPConfig
from prefrl.validation import deferred_validation

console = Console(stderr=True, soft_wrap=True)
"""soft_wrap: printed commands (--resume, tensorboard) stay on one line, copyable, at any width."""


class TrainingCommand(Protocol):
    @property
    def config(self) -> Any: ...

    @property
    def torch_threads(self) -> int | None: ...


C = TypeVar("C", bound=TrainingCommand)


@dataclass(frozen=True)
class PPOCommand:
    """Train PPO on a gymnasium task with its own reward. The env id's tuned preset (if any) gives
    the defaults; flags override them."""

    config: Annotated[PPOConfig, tyro.conf.OmitArgPrefixes]
    run_dir: Path | None = None
    """Run directory to create (default: runs/ppo-ENV-sSEED-DATE-TIME)."""
    resume: Path | None = None
    """Continue the run in this directory from its last checkpoint (its config is kept)."""
    torch_threads: int | None = None
    """Torch CPU threads (default: 1, fastest for small MLPs on a few cores; every core for Atari's
    CNN, where the convolutions are the cost)."""


@dataclass(frozen=True)
class RLHPCommand:
    """Train from preferences only: the agent never sees the env's reward, only a reward model fitted
    to a labeller's answers to "which of these two clips is better?". PPO flags as in `prefrl ppo`."""

    config: Annotated[RLHPConfig, tyro.conf.arg(name="")]
    labeller: Literal["synthetic", "human", "flip-judge"] = "synthetic"
    """Who answers: a synthetic teacher from the env's true reward, people in the labelling app
    (served next to training, its URL printed; see --human.* for its queue and port), or the flip
    judge (Hopper: prefers the clip closer to a clean backflip, from what it shows)."""
    run_dir: Path | None = None
    """Run directory to create (default: runs/rlhp-ENV-sSEED-DATE-TIME)."""
    resume: Path | None = None
    """Continue the run in this directory from its last checkpoint (its config is kept)."""
    torch_threads: int = 1
    """Torch CPU threads."""


@dataclass(frozen=True)
class LabelCommand:
    """Serve the labelling app over a run's preference store (people answer while training goes on).
    Add labellers with `prefrl label add-labeller NAME --run-dir RUN_DIR`."""

    run_dir: tyro.conf.Positional[Path]
    """The run directory (of `prefrl rlhp`)."""
    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0: reachable from other machines)."""
    port: int = 8000
    """Port (0: a free port)."""
    lease_seconds: float = 300.0
    """A query shown to a labeller returns to the pool after this long without an answer."""


@dataclass(frozen=True)
class AddLabellerCommand:
    """Register a labeller (or give one a new token) and print their personal URL."""

    name: tyro.conf.Positional[str]
    """The labeller's name (letters, digits, '_', '.', '@', '-')."""
    run_dir: Path
    """The run directory whose store they will label."""
    admin: bool = False
    """May see the admin page (agreement statistics)."""
    url: str | None = None
    """Where the app is served, for the printed URL (default: where this run's app was last served)."""
    expires_days: float | None = None
    """The token stops working after this many days (default: never; a new add-labeller replaces it)."""


@dataclass(frozen=True)
class LabellerCommand:
    """Remove a labeller (their token stops working, the queries they hold go back to the pool, their
    answers stay), or give or take admin rights (set-admin NAME [--no-admin])."""

    name: tyro.conf.Positional[str]
    """The labeller's name."""
    run_dir: Path
    """The run directory whose store they label."""
    admin: bool = True
    """set-admin: give admin rights (--no-admin: take them away)."""


@dataclass(frozen=True)
class PlotCommand:
    """Draw a run's learning curves to PNG."""

    run_dir: tyro.conf.Positional[Path]
    """The run directory."""
    output: Path | None = None
    """PNG path (default: RUN_DIR/plots/learning_curves.png)."""


@dataclass(frozen=True)
class VideoCommand:
    """Render a run's trained agent (deterministic policy) to an mp4."""

    run_dir: tyro.conf.Positional[Path]
    """The run directory."""
    output: Path | None = None
    """Video path (default: RUN_DIR/videos/ENV.mp4)."""
    num_episodes: int = 1
    """Episodes to record."""
    max_frames: int = 1000
    """Stop after this many frames."""


@dataclass(frozen=True)
class DemoCommand:
    """Pendulum-v1 learned from preferences alone, next to PPO on the true reward; a report (table,
    plots, video) in the run directory. About 2-3 minutes on 2 CPU cores."""

    run_dir: Path | None = None
    """Run directory to create (default: runs/demo-DATE-TIME)."""
    seed: int = 1
    """Seed of the run."""


def _pre_parse(argv: list[str]) -> argparse.Namespace:
    """Read --env-id and --resume before tyro so that the preset / saved config become defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env-id", "--env_id", default=None)
    pre.add_argument("--resume", default=None)
    return pre.parse_known_args(argv)[0]


def parse_training(argv: list[str], command: type[C], kind: str, prog: str) -> C:
    """Parse ``prefrl ppo`` / ``prefrl rlhp``: the env id's preset (or, with --resume, the run's
    saved config) gives the defaults, flags override them; a resumed run's config may not change."""
    from prefrl.cli.run_dir import read_run_config
    from prefrl.ppo.presets import preset_config
    from prefrl.rlhp.presets import rlhp_preset
    from prefrl.validation import config_from_dict

    config_cls: type[PPOConfig] | type[RLHPConfig] = PPOConfig if kind == "ppo" else RLHPConfig
    pre = _pre_parse(argv)
    saved: PPOConfig | RLHPConfig | None = None
    if pre.resume is not None:
        saved = config_from_dict(config_cls, read_run_config(Path(pre.resume), kind=kind))
        default = saved
    else:
        ppo = preset_config(pre.env_id or PPOConfig.env_id)
        if kind == "rlhp" and ppo.terminal_on_life_loss:  # no life-loss signal reaches a preference agent
            ppo = dataclasses.replace(ppo, terminal_on_life_loss=False)  # (the 2017 paper's Atari runs)
        default = ppo if kind == "ppo" else rlhp_preset(ppo)[0]
    with deferred_validation():
        default_command: C = cast(Any, command)(config=default)
        cmd = tyro.cli(command, default=default_command, args=argv, prog=prog)
    cmd.config.validate()
    if cmd.torch_threads is not None and cmd.torch_threads < 1:
        raise ValueError("torch_threads must be >= 1: fix --torch-threads")
    ppo_config = cmd.config if isinstance(cmd.config, PPOConfig) else cmd.config.ppo
    trained = ppo_config.num_iterations * ppo_config.batch_size
    asked = any(a.split("=")[0] in ("--total-timesteps", "--total_timesteps") for a in argv)
    if asked and trained != ppo_config.total_timesteps:
        console.print(
            f"note: --total-timesteps {ppo_config.total_timesteps} is not a multiple of a rollout "
            f"(num_envs * num_steps = {ppo_config.batch_size}): training runs {trained} steps "
            f"({ppo_config.num_iterations} rollouts)"
        )
    if saved is not None:
        diffs = config_diffs(dataclasses.asdict(saved), dataclasses.asdict(cmd.config))
        if diffs:
            raise ValueError(
                f"--resume {pre.resume}: {', '.join(diffs)} does not match the run's config: drop "
                "those flags (a resumed run keeps its config) or start a new run"
            )
    return cmd


def config_diffs(saved: dict[str, Any], given: dict[str, Any], prefix: str = "") -> list[str]:
    """'name=given (run has saved)' for every (nested) field that differs."""
    diffs = []
    for name, old in saved.items():
        new = given[name]
        if isinstance(old, dict):
            diffs += config_diffs(old, new, f"{prefix}{name}.")
        elif old != new:
            diffs.append(f"{prefix}{name}={new!r} (run has {old!r})")
    return diffs


def cmd_ppo(argv: list[str]) -> int:
    from prefrl.cli.gym import run_ppo

    cmd = parse_training(argv, PPOCommand, "ppo", "prefrl ppo")
    return run_ppo(cmd.config, cmd.run_dir, cmd.resume, cmd.torch_threads, console)


def cmd_rlhp(argv: list[str]) -> int:
    from prefrl.cli.gym import run_rlhp

    cmd = parse_training(argv, RLHPCommand, "rlhp", "prefrl rlhp")
    return run_rlhp(cmd.config, cmd.run_dir, cmd.resume, cmd.torch_threads, console, cmd.labeller)


def cmd_label(argv: list[str]) -> int:
    from prefrl.cli.label import add_labeller, run_label

    if argv and argv[0] == "add-labeller":
        add = tyro.cli(AddLabellerCommand, args=argv[1:], prog="prefrl label add-labeller")
        print(add_labeller(add.run_dir, add.name, add.admin, add.url, add.expires_days))
        return 0
    if argv and argv[0] in ("remove-labeller", "set-admin"):
        from prefrl.cli.label import remove_labeller, set_admin

        who = tyro.cli(LabellerCommand, args=argv[1:], prog=f"prefrl label {argv[0]}")
        if argv[0] == "remove-labeller":
            remove_labeller(who.run_dir, who.name)
            console.print(f"removed {who.name}: their link no longer works")
        else:
            set_admin(who.run_dir, who.name, who.admin)
            console.print(f"{who.name} is {'now' if who.admin else 'no longer'} an admin")
        return 0
    cmd = tyro.cli(LabelCommand, args=argv, prog="prefrl label")
    if not 0 <= cmd.port < 65536 or cmd.lease_seconds <= 0:
        raise ValueError("--port must be in [0, 65535] and --lease-seconds > 0")
    return run_label(cmd.run_dir, cmd.host, cmd.port, cmd.lease_seconds, console)


def cmd_demo(argv: list[str]) -> int:
    from prefrl.cli.demo import run_demo

    cmd = tyro.cli(DemoCommand, args=argv, prog="prefrl demo")
    return run_demo(cmd.run_dir, cmd.seed, console)


def cmd_plot(argv: list[str]) -> int:
    from prefrl.cli.plots import plot_run

    cmd = tyro.cli(PlotCommand, args=argv, prog="prefrl plot")
    path = plot_run(cmd.run_dir, cmd.output)
    console.print(f"wrote {path}")
    return 0


def cmd_video(argv: list[str]) -> int:
    from prefrl.cli.video import record_video

    cmd = tyro.cli(VideoCommand, args=argv, prog="prefrl video")
    if cmd.num_episodes < 1 or cmd.max_frames < 1:
        raise ValueError("--num-episodes and --max-frames must be >= 1")
    path, frames, returns = record_video(cmd.run_dir, cmd.output, cmd.num_episodes, cmd.max_frames)
    console.print(f"wrote {path} ({frames} frames; episode returns {[round(r, 1) for r in returns]})")
    return 0


def cmd_lm(argv: list[str]) -> int:
    from prefrl.cli.lm import main as lm_main

    return lm_main(argv, console)


COMMANDS = {
    "ppo": (cmd_ppo, "train PPO on a gymnasium task (presets for common ids)"),
    "rlhp": (
        cmd_rlhp,
        "train from preferences (synthetic or human labellers), never seeing the env's reward",
    ),
    "label": (
        cmd_label,
        "serve the labelling app: prefrl label RUN_DIR; add-labeller | remove-labeller | set-admin NAME",
    ),
    "demo": (cmd_demo, "learn Pendulum from preferences alone, next to PPO; writes a report"),
    "plot": (cmd_plot, "draw a run's learning curves: prefrl plot RUN_DIR"),
    "video": (cmd_video, "render a run's agent to mp4: prefrl video RUN_DIR"),
    "lm": (cmd_lm, "RLHF for language models: prefrl lm sft|rm|ppo|dpo|pairs|pipeline|coding"),
}


def _usage() -> str:
    lines = ["usage: prefrl COMMAND [--help] [flags]", "", "commands:"]
    lines += [f"  {name:<7} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import gymnasium as gym

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from prefrl import __version__

        print(f"prefrl {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(
            f"error: unknown command {argv[0]!r}: pick one of {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    try:
        return COMMANDS[argv[0]][0](argv[1:])
    except (ValueError, gym.error.Error) as exc:
        if os.environ.get("PREFRL_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
