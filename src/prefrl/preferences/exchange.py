"""Comparisons in and out of a preference store as JSONL: one comparison a line, with its two
segments inline (observations, actions, true rewards), to move answers between stores or tools.
Ratings and rankings stay in the store (its SQLite file is the complete record)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from prefrl.datatypes import Segment
from prefrl.preferences.store import PreferenceStore, check_label


def export_jsonl(store: PreferenceStore, path: Path) -> int:
    """Write every comparison of ``store`` with its two segments inline, one JSON object a line."""
    rows = store.comparisons()
    with Path(path).open("w", encoding="utf-8") as f:
        for c in rows:
            s1, s2 = store.segments([c.segment_1, c.segment_2])
            f.write(json.dumps({
                "label": c.label, "labeller": c.labeller, "answered_at": c.answered_at,
                "segment_1": _segment_json(s1), "segment_2": _segment_json(s2),
            }) + "\n")  # fmt: skip
    return len(rows)


def import_jsonl(store: PreferenceStore, path: Path) -> int:
    """Add the comparisons of an exported file (with their segments) to ``store``; ValueError naming
    the line of a record that is not a comparison."""
    count = 0
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
                s1, s2 = _segment_from_json(record["segment_1"]), _segment_from_json(record["segment_2"])
                label = check_label(record["label"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: not a comparison record ({exc})") from None
            a, b = store.add_segments([s1, s2])
            (query,) = store.add_queries([(a, b)])
            store.answer(query, label, str(record.get("labeller", "imported")))
            count += 1
    return count


def _segment_json(s: Segment) -> dict:
    return {"obs": s.obs.tolist(), "actions": s.actions.tolist(), "true_rewards": s.true_rewards.tolist()}


def _segment_from_json(d: dict) -> Segment:
    return Segment(
        np.asarray(d["obs"], dtype=np.float32),
        np.asarray(d["actions"]),
        np.asarray(d["true_rewards"], dtype=np.float32),
    )
