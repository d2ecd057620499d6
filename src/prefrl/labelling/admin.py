"""The admin page: progress, and agreement between labellers (per labeller, per query with k > 1)."""

from __future__ import annotations

import html
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


def render_admin(queue: LabelQueue) -> str:
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
    )
