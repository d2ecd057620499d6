"""``prefrl label``: the labelling app over a run's preference store, in the foreground, or beside a
``prefrl rlhp --labeller human`` run; and registering labellers."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from prefrl.cli.checks import check_labelling_installed
from prefrl.cli.run_dir import PREFERENCES_FILE
from prefrl.preferences.store import PreferenceStore

if TYPE_CHECKING:
    from prefrl.labelling.server import BackgroundServer
    from prefrl.rlhp import RLHPTrainer


def start_labelling(trainer: RLHPTrainer, run_dir: Path, console: Console) -> BackgroundServer:
    """Serve the labelling app over the run's store in a background thread; print the owner's URL."""
    from prefrl.labelling.server import start_background
    from prefrl.preferences.queue import LabelQueue

    human = trainer.config.human
    LabelQueue(trainer.store).set_budget(trainer.config.num_labels)
    server, url = start_background(run_dir / PREFERENCES_FILE, human.host, human.port, human.lease_seconds)
    console.print(f"label at {url}", soft_wrap=True)
    console.print(f"more labellers: prefrl label add-labeller NAME --run-dir {run_dir}", soft_wrap=True)
    return server


def report_answers(trainer: RLHPTrainer, run_dir: Path, console: Console) -> None:
    """After a run with people: how many answered, and what the agent was paid."""
    answered, asked = trainer.store.answers_signature()[0], trainer.num_asked
    console.print(f"people gave {answered} usable answers to {asked} queries asked", soft_wrap=True)
    if not trainer.reward_fitted:
        console.print(
            f"[bold red]warning:[/bold red] fewer than --human.min-labels "
            f"({trainer.config.human.min_labels}) answers came in, so the agent was never paid a learned "
            f"reward: serve the queries with `prefrl label {run_dir}`, then train a new run on more "
            "steps, or label while training runs",
            soft_wrap=True,
        )


def labelling_store(run_dir: Path) -> Path:
    """The store of a run directory, with clear errors for anything else."""
    from prefrl.cli.run_dir import read_run

    read_run(run_dir)
    path = Path(run_dir) / PREFERENCES_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} has no {PREFERENCES_FILE}: pass the run directory of `prefrl rlhp`")
    return path


def run_label(run_dir: Path, host: str, port: int, lease_seconds: float, console: Console) -> int:
    """``prefrl label RUN_DIR``: serve the app in the foreground until Ctrl-C."""
    from prefrl.labelling.server import serve_forever

    check_labelling_installed()
    store = labelling_store(run_dir)
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(
            store, host, port, lease_seconds, lambda url: console.print(f"label at {url}", soft_wrap=True)
        )
    console.print("stopped serving; every acknowledged answer is in the store")
    return 0


DEFAULT_URL = "http://127.0.0.1:8000"


def add_labeller(
    run_dir: Path, name: str, admin: bool, url: str | None = None, expires_days: float | None = None
) -> str:
    """Register ``name`` in the run's store; returns their personal URL (``url``: where the app is
    served; default: where it was last served, else the default port)."""
    from prefrl.preferences.queue import LabelQueue

    with PreferenceStore(labelling_store(run_dir)) as store:
        token = LabelQueue(store).add_labeller(name, admin, expires_days)
        url = url or store.meta("app_url") or DEFAULT_URL
    return f"{url.rstrip('/')}/?token={token}"


def remove_labeller(run_dir: Path, name: str) -> None:
    """``name``'s token stops working; the queries they hold return to the pool; answers stay."""
    from prefrl.preferences.queue import LabelQueue

    with PreferenceStore(labelling_store(run_dir)) as store:
        LabelQueue(store).remove_labeller(name)


def set_admin(run_dir: Path, name: str, admin: bool) -> None:
    from prefrl.preferences.queue import LabelQueue

    with PreferenceStore(labelling_store(run_dir)) as store:
        LabelQueue(store).set_admin(name, admin)
