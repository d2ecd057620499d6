"""The preference store: one SQLite file per run holding segments, pending queries and comparisons.

Every answer is committed (WAL, synchronous=FULL) before the call that records it returns, so a
crash loses nothing that was acknowledged. "Can't tell" is recorded (label NULL) but not trained on.
Segments may carry render states (to draw clips for people) or a text (language-model responses,
see :meth:`PreferenceStore.add_text_pair`). Labellers, leases, undo and agreement: ``queue.py``.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prefrl.datatypes import Segment

SCHEMA_VERSION = 4
"""1: segments, queries, one comparison per query. 2: render states and texts of segments, prompts,
redundancy and leases of queries, labellers, k answers per query. 3: the real steps of segments that
end in the absorbing state after termination. 4: labellers' token expiry. Older stores are migrated
on open."""
VALID_LABELS = (0.0, 0.5, 1.0)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, iteration INTEGER NOT NULL,
    obs BLOB NOT NULL, actions BLOB NOT NULL, true_rewards BLOB NOT NULL,
    render_state BLOB, text TEXT, num_real INTEGER);
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY, segment_1 INTEGER NOT NULL REFERENCES segments(id),
    segment_2 INTEGER NOT NULL REFERENCES segments(id), created REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'answered')),
    prompt TEXT, redundancy INTEGER NOT NULL DEFAULT 1, leased_to TEXT, lease_expires REAL);
CREATE TABLE IF NOT EXISTS comparisons (
    id INTEGER PRIMARY KEY, query_id INTEGER REFERENCES queries(id),
    segment_1 INTEGER NOT NULL REFERENCES segments(id), segment_2 INTEGER NOT NULL REFERENCES segments(id),
    label REAL CHECK (label IS NULL OR label IN (0, 0.5, 1)), labeller TEXT NOT NULL,
    answered_at REAL NOT NULL, UNIQUE (query_id, labeller));
CREATE TABLE IF NOT EXISTS labellers (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, token_hash TEXT UNIQUE NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, token_expires REAL);
CREATE INDEX IF NOT EXISTS queries_status ON queries(status);
CREATE INDEX IF NOT EXISTS comparisons_query ON comparisons(query_id);
"""

_MIGRATE_1_TO_2 = """
ALTER TABLE segments ADD COLUMN render_state BLOB;
ALTER TABLE segments ADD COLUMN text TEXT;
ALTER TABLE queries ADD COLUMN prompt TEXT;
ALTER TABLE queries ADD COLUMN redundancy INTEGER NOT NULL DEFAULT 1;
ALTER TABLE queries ADD COLUMN leased_to TEXT;
ALTER TABLE queries ADD COLUMN lease_expires REAL;
ALTER TABLE comparisons RENAME TO comparisons_v1;
"""
_MIGRATE_2_TO_3 = """
ALTER TABLE segments ADD COLUMN num_real INTEGER;
"""
_MIGRATE_3_TO_4 = """
ALTER TABLE labellers ADD COLUMN token_expires REAL;
"""
_COPY_V1_COMPARISONS = """
INSERT INTO comparisons SELECT id, query_id, segment_1, segment_2, label, labeller, answered_at
FROM comparisons_v1;
DROP TABLE comparisons_v1;
"""


@dataclass(frozen=True)
class TextComparison:
    """One answer about two responses to a prompt: label = P[response_1 preferred] (None: can't tell)."""

    prompt: str
    response_1: str
    response_2: str
    label: float | None
    labeller: str


@dataclass(frozen=True)
class Comparison:
    """One answer: P[segment_1 preferred] in {0, 0.5, 1}, or None for "can't tell"."""

    id: int
    segment_1: int
    segment_2: int
    label: float | None
    labeller: str
    answered_at: float


NPY_MAGIC = b"\x93NUMPY"
"""How an uncompressed array blob starts (stores written before compression hold only those)."""


def _to_blob(array: np.ndarray) -> bytes:
    """An array as .npy bytes; frames (uint8) zlib-compressed: stacked Atari frames repeat each frame
    4 times and compress about 20-fold."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    raw = buffer.getvalue()
    return zlib.compress(raw, 1) if array.dtype == np.uint8 else raw


def _from_blob(blob: bytes) -> np.ndarray:
    raw = blob if blob.startswith(NPY_MAGIC) else zlib.decompress(blob)
    return np.load(io.BytesIO(raw), allow_pickle=False)


def check_label(label: float | None) -> float | None:
    if label is not None and label not in VALID_LABELS:
        raise ValueError(
            f"label must be 0 (second better), 0.5 (equally good), 1 (first better) or None "
            f"(can't tell), got {label!r}"
        )
    return None if label is None else float(label)


class PreferenceStore:
    """Open (or create) the store at ``path``. With ``env_id``, a new store records it and an
    existing one must hold segments of that env (ValueError otherwise). ``any_thread``: the
    connection may be handed between threads (one at a time), as a web request's is."""

    def __init__(self, path: Path, env_id: str | None = None, any_thread: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(
            self.path, isolation_level=None, timeout=30.0, check_same_thread=not any_thread
        )
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
            if version in (1, 2, 3):
                self._migrate()
            elif version != SCHEMA_VERSION:
                raise ValueError(
                    f"{self.path} has preference-store schema {version}, this prefrl reads "
                    f"{SCHEMA_VERSION} (and migrates 1 to 3): use the prefrl version that wrote it"
                )
            return
        self.db.executescript(
            f"BEGIN; {_SCHEMA} INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
        )

    def _migrate(self) -> None:
        """Schema 1, 2 or 3 -> 4 in one transaction. 1 -> 2: new nullable columns, and comparisons
        rebuilt so that a query may hold one answer per labeller (k answers) instead of one in all
        (the labellers table is created as today's). 2 -> 3: the segments' real-step count (NULL: all
        real). 3 -> 4: labellers' token expiry (NULL: never)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            steps = {"1": _MIGRATE_1_TO_2 + _SCHEMA + _COPY_V1_COMPARISONS + _MIGRATE_2_TO_3}
            steps["2"] = _MIGRATE_2_TO_3 + _MIGRATE_3_TO_4
            steps["3"] = _MIGRATE_3_TO_4
            for statement in steps.get(row[0], "").split(";"):  # another process may have migrated
                if statement.strip():
                    self.db.execute(statement)
            self.db.execute(f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version'")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> PreferenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # segments
    def add_segments(
        self, segments: Sequence[Segment], iteration: int = 0, texts: Sequence[str] | None = None
    ) -> list[int]:
        """Store segments (with their render states, if any); ``texts``: one per segment, for
        language-model responses. Returns their ids."""
        now = time.time()
        texts = texts if texts is not None else [None] * len(segments)  # type: ignore[list-item]
        rows = [
            (now, iteration, _to_blob(s.obs), _to_blob(s.actions), _to_blob(s.true_rewards),
             None if s.render_state is None else _to_blob(s.render_state), text, s.num_real)
            for s, text in zip(segments, texts, strict=True)
        ]  # fmt: skip
        ids = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for row in rows:
                cursor = self.db.execute(
                    "INSERT INTO segments (created, iteration, obs, actions, true_rewards, render_state, "
                    "text, num_real) VALUES (?,?,?,?,?,?,?,?)",
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
                "SELECT id, obs, actions, true_rewards, render_state, num_real FROM segments "
                f"WHERE id IN ({marks})",
                chunk,
            ):
                state = None if row[4] is None else _from_blob(row[4])
                arrays = (_from_blob(row[1]), _from_blob(row[2]), _from_blob(row[3]))
                found[row[0]] = Segment(*arrays, state, num_real=row[5])
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValueError(f"no segments with ids {missing[:5]} in {self.path}")
        return [found[i] for i in ids]

    def num_segments(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM segments").fetchone()[0])

    # queries
    def add_queries(
        self, pairs: Iterable[tuple[int, int]], redundancy: int = 1, prompt: str | None = None
    ) -> list[int]:
        """Ask about pairs of stored segments; each query stays pending until ``redundancy``
        labellers have answered it."""
        if redundancy < 1:
            raise ValueError(f"redundancy must be >= 1 (answers per query), got {redundancy}")
        now = time.time()
        ids = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for a, b in pairs:
                cursor = self.db.execute(
                    "INSERT INTO queries (segment_1, segment_2, created, redundancy, prompt) "
                    "VALUES (?,?,?,?,?)",
                    (int(a), int(b), now, int(redundancy), prompt),
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def add_text_pair(self, prompt: str, response_1: str, response_2: str, redundancy: int = 1) -> int:
        """Ask "which response to ``prompt`` is better?" (language models); returns the query id.
        The labelling app shows the prompt and both responses; answers come back through
        :meth:`text_comparisons` (label 1: response 1 better)."""
        empty = Segment(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))
        a, b = self.add_segments([empty, empty], texts=[response_1, response_2])
        return self.add_queries([(a, b)], redundancy, prompt=prompt)[0]

    def text_pair(self, query_id: int) -> tuple[str, str, str] | None:
        """(prompt, response 1, response 2) of a text query; None for a query of clips."""
        row = self.db.execute(
            "SELECT q.prompt, s1.text, s2.text FROM queries q JOIN segments s1 ON s1.id = q.segment_1 "
            "JOIN segments s2 ON s2.id = q.segment_2 WHERE q.id = ?",
            (query_id,),
        ).fetchone()
        if row is None:
            raise ValueError(f"no query {query_id} in {self.path}")
        return None if row[1] is None else (row[0] or "", row[1], row[2] or "")

    def text_comparisons(self, trainable_only: bool = True) -> list[TextComparison]:
        """Every answer to a text query, oldest first (by default without "can't tell")."""
        sql = (
            "SELECT q.prompt, s1.text, s2.text, c.label, c.labeller FROM comparisons c "
            "JOIN queries q ON q.id = c.query_id JOIN segments s1 ON s1.id = c.segment_1 "
            "JOIN segments s2 ON s2.id = c.segment_2 WHERE s1.text IS NOT NULL"
        )
        sql += " AND c.label IS NOT NULL" if trainable_only else ""
        return [TextComparison(*row) for row in self.db.execute(sql + " ORDER BY c.id")]

    def num_queries(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM queries").fetchone()[0])

    def num_pending(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM queries WHERE status = 'pending'").fetchone()[0])

    def pending_queries(self, limit: int | None = None) -> list[tuple[int, int, int]]:
        """(query id, segment 1, segment 2) of unanswered queries, oldest first."""
        sql = "SELECT id, segment_1, segment_2 FROM queries WHERE status = 'pending' ORDER BY id"
        rows = self.db.execute(sql + (f" LIMIT {int(limit)}" if limit is not None else "")).fetchall()
        return [(int(q), int(a), int(b)) for q, a, b in rows]

    # comparisons
    def answer(self, query_id: int, label: float | None, labeller: str) -> int:
        """Record ``labeller``'s answer to a pending query; committed before it returns. ValueError if
        the query is unknown, already answered, or answered by this labeller (nothing is written)."""
        label = check_label(label)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            return self.record_answer(query_id, label, labeller)

    def record_answer(self, query_id: int, label: float | None, labeller: str) -> int:
        """The insert of :meth:`answer`, inside the caller's ``BEGIN IMMEDIATE`` transaction: the
        query's lease is released, and it is answered once ``redundancy`` labellers have answered."""
        row = self.db.execute(
            "SELECT segment_1, segment_2, status, redundancy FROM queries WHERE id = ?", (query_id,)
        ).fetchone()
        if row is None:
            raise ValueError(f"no query {query_id}")
        if row[2] != "pending":
            raise ValueError(f"query {query_id} is already answered")
        mine = "SELECT 1 FROM comparisons WHERE query_id = ? AND labeller = ?"
        if self.db.execute(mine, (query_id, labeller)).fetchone():
            raise ValueError(f"query {query_id} is already answered by {labeller}")
        cursor = self.db.execute(
            "INSERT INTO comparisons (query_id, segment_1, segment_2, label, labeller, answered_at) "
            "VALUES (?,?,?,?,?,?)",
            (query_id, row[0], row[1], label, labeller, time.time()),
        )
        count = self.db.execute("SELECT COUNT(*) FROM comparisons WHERE query_id = ?", (query_id,))
        status = "answered" if count.fetchone()[0] >= row[3] else "pending"
        self.db.execute(
            "UPDATE queries SET status = ?, leased_to = NULL, lease_expires = NULL WHERE id = ?",
            (status, query_id),
        )
        return int(cursor.lastrowid or 0)

    def answers_signature(self) -> tuple[int, int]:
        """(count, last id) of the trainable comparisons: changes whenever one is added or removed."""
        row = self.db.execute("SELECT COUNT(*), MAX(id) FROM comparisons WHERE label IS NOT NULL").fetchone()
        return int(row[0]), int(row[1] or 0)

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
