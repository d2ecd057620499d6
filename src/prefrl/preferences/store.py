"""The preference store: one SQLite file per run holding segments, pending queries and comparisons.

Every answer is committed (WAL, synchronous=FULL) before the call that records it returns, so a
crash loses nothing that was acknowledged. "Can't tell" is recorded (label NULL) but not trained on.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prefrl.datatypes import Segment

SCHEMA_VERSION = 1
VALID_LABELS = (0.0, 0.5, 1.0)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, iteration INTEGER NOT NULL,
    obs BLOB NOT NULL, actions BLOB NOT NULL, true_rewards BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY, segment_1 INTEGER NOT NULL REFERENCES segments(id),
    segment_2 INTEGER NOT NULL REFERENCES segments(id), created REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'answered')));
CREATE TABLE IF NOT EXISTS comparisons (
    id INTEGER PRIMARY KEY, query_id INTEGER UNIQUE REFERENCES queries(id),
    segment_1 INTEGER NOT NULL REFERENCES segments(id), segment_2 INTEGER NOT NULL REFERENCES segments(id),
    label REAL CHECK (label IS NULL OR label IN (0, 0.5, 1)), labeller TEXT NOT NULL,
    answered_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS queries_status ON queries(status);
"""


@dataclass(frozen=True)
class Comparison:
    """One answer: P[segment_1 preferred] in {0, 0.5, 1}, or None for "can't tell"."""

    id: int
    segment_1: int
    segment_2: int
    label: float | None
    labeller: str
    answered_at: float


def _to_blob(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _from_blob(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


def check_label(label: float | None) -> float | None:
    if label is not None and label not in VALID_LABELS:
        raise ValueError(
            f"label must be 0 (second better), 0.5 (equally good), 1 (first better) or None "
            f"(can't tell), got {label!r}"
        )
    return None if label is None else float(label)


class PreferenceStore:
    """Open (or create) the store at ``path``. With ``env_id``, a new store records it and an
    existing one must hold segments of that env (ValueError otherwise)."""

    def __init__(self, path: Path, env_id: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._create_schema()
        if env_id is not None:
            self._check_env(env_id)

    def _check_env(self, env_id: str) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'env_id'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('env_id', ?)", (env_id,))
        elif row[0] != env_id:
            self.db.close()
            raise ValueError(
                f"{self.path} holds segments of {row[0]}, not {env_id}: use a store of this env "
                "or a new run directory"
            )

    def _create_schema(self) -> None:
        existing = self.db.execute("SELECT name FROM sqlite_master WHERE name = 'meta'").fetchone()
        if existing:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else None
            if version != SCHEMA_VERSION:
                raise ValueError(
                    f"{self.path} has preference-store schema {version}, this prefrl reads "
                    f"{SCHEMA_VERSION}: use the prefrl version that wrote it"
                )
            return
        self.db.executescript(
            f"BEGIN; {_SCHEMA} INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
        )

    def close(self) -> None:
        self.db.close()

    # segments
    def add_segments(self, segments: Sequence[Segment], iteration: int = 0) -> list[int]:
        now = time.time()
        rows = [
            (now, iteration, _to_blob(s.obs), _to_blob(s.actions), _to_blob(s.true_rewards)) for s in segments
        ]
        ids = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for row in rows:
                cursor = self.db.execute(
                    "INSERT INTO segments (created, iteration, obs, actions, true_rewards) "
                    "VALUES (?,?,?,?,?)",
                    row,
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def segments(self, ids: Iterable[int]) -> list[Segment]:
        ids = list(ids)
        found = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT id, obs, actions, true_rewards FROM segments WHERE id IN ({marks})", chunk
            ):
                found[row[0]] = Segment(_from_blob(row[1]), _from_blob(row[2]), _from_blob(row[3]))
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValueError(f"no segments with ids {missing[:5]} in {self.path}")
        return [found[i] for i in ids]

    def num_segments(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM segments").fetchone()[0])

    # queries
    def add_queries(self, pairs: Iterable[tuple[int, int]]) -> list[int]:
        now = time.time()
        ids = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for a, b in pairs:
                cursor = self.db.execute(
                    "INSERT INTO queries (segment_1, segment_2, created) VALUES (?,?,?)",
                    (int(a), int(b), now),
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def num_queries(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM queries").fetchone()[0])

    def pending_queries(self, limit: int | None = None) -> list[tuple[int, int, int]]:
        """(query id, segment 1, segment 2) of unanswered queries, oldest first."""
        sql = "SELECT id, segment_1, segment_2 FROM queries WHERE status = 'pending' ORDER BY id"
        rows = self.db.execute(sql + (f" LIMIT {int(limit)}" if limit is not None else "")).fetchall()
        return [(int(q), int(a), int(b)) for q, a, b in rows]

    # comparisons
    def answer(self, query_id: int, label: float | None, labeller: str) -> int:
        """Record the answer to a pending query; committed before it returns. ValueError if the query
        is unknown or already answered (nothing is written then)."""
        label = check_label(label)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(
                "SELECT segment_1, segment_2, status FROM queries WHERE id = ?", (query_id,)
            ).fetchone()
            if row is None:
                raise ValueError(f"no query {query_id}")
            if row[2] != "pending":
                raise ValueError(f"query {query_id} is already answered")
            cursor = self.db.execute(
                "INSERT INTO comparisons (query_id, segment_1, segment_2, label, labeller, answered_at) "
                "VALUES (?,?,?,?,?,?)",
                (query_id, row[0], row[1], label, labeller, time.time()),
            )
            self.db.execute("UPDATE queries SET status = 'answered' WHERE id = ?", (query_id,))
        return int(cursor.lastrowid or 0)

    def comparisons(self, trainable_only: bool = False) -> list[Comparison]:
        sql = "SELECT id, segment_1, segment_2, label, labeller, answered_at FROM comparisons"
        if trainable_only:
            sql += " WHERE label IS NOT NULL"
        return [Comparison(*row) for row in self.db.execute(sql + " ORDER BY id")]

    def num_comparisons(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM comparisons").fetchone()[0])

    def export_jsonl(self, path: Path) -> int:
        """Write every comparison with its two segments inline, one JSON object a line."""
        rows = self.comparisons()
        with Path(path).open("w", encoding="utf-8") as f:
            for c in rows:
                s1, s2 = self.segments([c.segment_1, c.segment_2])
                f.write(json.dumps({
                    "label": c.label, "labeller": c.labeller, "answered_at": c.answered_at,
                    "segment_1": _segment_json(s1), "segment_2": _segment_json(s2),
                }) + "\n")  # fmt: skip
        return len(rows)

    def import_jsonl(self, path: Path) -> int:
        """Add the comparisons of an exported file (with their segments) to this store."""
        count = 0
        with Path(path).open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    record = json.loads(line)
                    s1, s2 = _segment_from_json(record["segment_1"]), _segment_from_json(record["segment_2"])
                    label = check_label(record["label"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"{path}:{number}: not a comparison record ({exc})") from None
                a, b = self.add_segments([s1, s2])
                (query,) = self.add_queries([(a, b)])
                self.answer(query, label, str(record.get("labeller", "imported")))
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
