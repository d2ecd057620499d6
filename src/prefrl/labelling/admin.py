"""The admin page: progress, and agreement between labellers (per labeller, per query with k > 1)."""

from __future__ import annotations

import html
import json
import string
from pathlib import Path
from typing import Any

from prefrl.preferences.queue import LabelQueue

LABEL_NAMES = {1.0: "left", 0.0: "right", 0.5: "equal", None: "can't tell"}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _rows(cells: list[list[Any]]) -> str:
    return "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in cells
    )


def training_line(queue: LabelQueue) -> str:
    """What training is doing, from the status the preference loop records in the store."""
    raw = queue.store.meta("training_status")
    if raw is None:
        return "No training has reported to this store (labels are kept for a later run)."
    status = json.loads(raw)
    where = f"Training: step {status['step']:,} of {status['total_steps']:,}. "
    if status["reward_fitted"]:
        return where + f"The agent is paid the learned reward (fitted on {status['answers_fitted']} answers)."
    return where + (
        f"The agent is paid nothing until the reward model is fitted on {status['min_labels']} answers "
        f"({status['answers_fitted']} so far): answer the first ones soon."
    )


def render_admin(queue: LabelQueue, token: str = "") -> str:
    stats, progress = queue.agreement(), queue.progress()
    people = [
        [name, int(p["answers"]), int(p["cant_tell"]), int(p["shared"]), _percent(p["agreement"])]
        for name, p in stats["labellers"].items()
    ]
    known = {who.name for who in queue.labellers()}
    people += [[name, 0, 0, 0, "-"] for name in sorted(known - set(stats["labellers"]))]
    queries = [
        [q["query_id"], ", ".join(f"{n}: {LABEL_NAMES[lab]}" for n, lab in q["answers"].items()),
         "yes" if q["unanimous"] else "no"]
        for q in stats["queries"]
    ]  # fmt: skip
    template = string.Template((Path(__file__).parent / "templates" / "admin.html").read_text())
    return template.substitute(
        answered=progress["answered"],
        budget="-" if progress["budget"] is None else progress["budget"],
        pending=progress["pending"],
        unanimous=_percent(stats["unanimous_fraction"]),
        labellers=_rows(people),
        queries=_rows(queries) or '<tr><td colspan="3">no query has several answers yet</td></tr>',
        training=html.escape(training_line(queue)),
        back=html.escape(f"/?token={token}", quote=True),
    )
