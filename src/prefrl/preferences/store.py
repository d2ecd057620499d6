"""The preference store: one SQLite file per run holding segments, pending queries and comparisons.

Every answer is committed (WAL, synchronous=FULL) before the call that records it returns, so a
crash loses nothing that was acknowledged. "Can't tell" is recorded (label NULL) but not trained on.
Segments may carry render states (to draw clips for people) or a text (language-model responses,
see :meth:`PreferenceStore.add_text_pair`). Labellers, leases, undo and agreement: ``queue.py``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prefrl.datatypes import Segment
from prefrl.preferences.schema import create_or_migrate, from_blob, to_blob
from prefrl.preferences.texts import TextQueries

VALID_LABELS = (0.0, 0.5, 1.0)
RATING_CLASSES_KEY = "rating_classes"
"""Store meta key: the points of the rating scale its rating queries use."""


@dataclass(frozen=True)
class Comparison:
    """One answer: P[segment_1 preferred] in {0, 0.5, 1}, or None for "can't tell"."""

    id: int
    segment_1: int
    segment_2: int
    label: float | None
    labeller: str
    answered_at: float


@dataclass(frozen=True)
class Rating:
    """One answer to a rating query: ``segment`` scored ``rating`` in 0 (worst) .. n - 1 (best), or
    None for "can't tell"."""

    id: int
    segment: int
    rating: int | None
    labeller: str
    answered_at: float


def check_label(label: float | None) -> float | None:
    if label is not None and label not in VALID_LABELS:
        raise ValueError(
            f"label must be 0 (second better), 0.5 (equally good), 1 (first better) or None "
            f"(can't tell), got {label!r}"
        )
    return None if label is None else float(label)


class PreferenceStore(TextQueries):
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
        create_or_migrate(self.db, self.path)

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
            (now, iteration, to_blob(s.obs), to_blob(s.actions), to_blob(s.true_rewards),
             None if s.render_state is None else to_blob(s.render_state), text, s.num_real)
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
                state = None if row[4] is None else from_blob(row[4])
                arrays = (from_blob(row[1]), from_blob(row[2]), from_blob(row[3]))
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

    def record_answer(
        self,
        query_id: int,
        label: float | None,
        labeller: str,
        rating: int | None = None,
        ranking: Sequence[int] | None = None,
    ) -> int:
        """The insert of :meth:`answer` (or :meth:`rate`, :meth:`rank`), inside the caller's
        ``BEGIN IMMEDIATE`` transaction: the query's lease is released, and it is answered once
        ``redundancy`` labellers have answered. A comparison query takes a label, a rating query a
        rating, a ranking query a ranking (positions best first); None for each: can't tell."""
        row = self.db.execute(
            "SELECT segment_1, segment_2, status, redundancy, kind FROM queries WHERE id = ?", (query_id,)
        ).fetchone()
        if row is None:
            raise ValueError(f"no query {query_id}")
        if row[2] != "pending":
            raise ValueError(f"query {query_id} is already answered")
        self._check_answer_kind(query_id, row[4], label, rating)
        rating = None if rating is None else int(rating)
        order = None if ranking is None else json.dumps(self._check_ranking(query_id, row[4], ranking))
        mine = "SELECT 1 FROM comparisons WHERE query_id = ? AND labeller = ?"
        if self.db.execute(mine, (query_id, labeller)).fetchone():
            raise ValueError(f"query {query_id} is already answered by {labeller}")
        cursor = self.db.execute(
            "INSERT INTO comparisons (query_id, segment_1, segment_2, label, labeller, answered_at, rating, "
            "ranking) VALUES (?,?,?,?,?,?,?,?)",
            (query_id, row[0], row[1], label, labeller, time.time(), rating, order),
        )
        count = self.db.execute("SELECT COUNT(*) FROM comparisons WHERE query_id = ?", (query_id,))
        status = "answered" if count.fetchone()[0] >= row[3] else "pending"
        self.db.execute(
            "UPDATE queries SET status = ?, leased_to = NULL, lease_expires = NULL WHERE id = ?",
            (status, query_id),
        )
        return int(cursor.lastrowid or 0)

    def _check_ranking(self, query_id: int, kind: str, ranking: Sequence[int]) -> list[int]:
        """A ranking of a ranking query's K items: a permutation of 0 .. K - 1, best first."""
        if kind != "rank":
            raise ValueError(f"query {query_id} is no ranking query: answer it with a label or a rating")
        size = len(self.query_items(query_id))
        order = [int(k) for k in ranking if isinstance(k, int | np.integer) and not isinstance(k, bool)]
        if len(order) != len(ranking) or sorted(order) != list(range(size)):
            raise ValueError(
                f"a ranking of query {query_id} lists each of its {size} items once, best first "
                f"(positions 0 to {size - 1}), got {list(ranking)[:12]!r}"
            )
        return order

    def _check_answer_kind(self, query_id: int, kind: str, label: float | None, rating: int | None) -> None:
        if kind == "rank" and (label is not None or rating is not None):
            raise ValueError(f"query {query_id} asks for a ranking: answer it with one, or None (can't tell)")
        if kind == "compare" and rating is not None:
            raise ValueError(f"query {query_id} compares two segments: answer it with a label, not a rating")
        if kind == "rate":
            classes = self.rating_classes()
            if label is not None:
                raise ValueError(f"query {query_id} asks for a rating of one segment, not a comparison")
            whole = isinstance(rating, int | np.integer) and not isinstance(rating, bool)
            if rating is not None and not (whole and 0 <= rating < (classes or 0)):
                raise ValueError(
                    f"rating must be an integer from 0 (worst) to {(classes or 1) - 1} (best), or None "
                    f"(can't tell), got {rating!r}"
                )

    # ratings
    def add_rating_queries(
        self, segment_ids: Iterable[int], num_classes: int, redundancy: int = 1, prompt: str | None = None
    ) -> list[int]:
        """Ask for a rating of each stored segment on a scale of ``num_classes`` points (0 .. n - 1;
        one scale per store); each query stays pending until ``redundancy`` labellers rated it."""
        if num_classes < 2:
            raise ValueError(f"a rating scale needs >= 2 points, got {num_classes}")
        known = self.rating_classes()
        if known is not None and known != num_classes:
            raise ValueError(
                f"{self.path} rates on a scale of {known} points, not {num_classes}: keep "
                f"--reward-model.rating-classes {known} or use a new run directory"
            )
        if redundancy < 1:
            raise ValueError(f"redundancy must be >= 1 (answers per query), got {redundancy}")
        self.set_meta(RATING_CLASSES_KEY, str(num_classes))
        now, ids = time.time(), []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for segment in segment_ids:
                cursor = self.db.execute(
                    "INSERT INTO queries (segment_1, segment_2, created, redundancy, prompt, kind) "
                    "VALUES (?,?,?,?,?,'rate')",
                    (int(segment), int(segment), now, int(redundancy), prompt),
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    # rankings
    def add_ranking_query(
        self, segment_ids: Sequence[int], redundancy: int = 1, prompt: str | None = None
    ) -> int:
        """Ask for an order of the stored segments, best first (a ranking query of K >= 3 items);
        returns the query id."""
        if len(segment_ids) < 3:
            raise ValueError(f"a ranking needs >= 3 items (two are a comparison), got {len(segment_ids)}")
        if redundancy < 1:
            raise ValueError(f"redundancy must be >= 1 (answers per query), got {redundancy}")
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            cursor = self.db.execute(
                "INSERT INTO queries (segment_1, segment_2, created, redundancy, prompt, kind) "
                "VALUES (?,?,?,?,?,'rank')",
                (int(segment_ids[0]), int(segment_ids[1]), time.time(), int(redundancy), prompt),
            )
            query = int(cursor.lastrowid or 0)
            self.db.executemany(
                "INSERT INTO query_items (query_id, position, segment) VALUES (?,?,?)",
                [(query, k, int(s)) for k, s in enumerate(segment_ids)],
            )
        return query

    def query_items(self, query_id: int) -> list[int]:
        """The segments of a ranking query, in the order shown."""
        rows = self.db.execute(
            "SELECT segment FROM query_items WHERE query_id = ? ORDER BY position", (query_id,)
        )
        return [int(r[0]) for r in rows]

    def rank(self, query_id: int, ranking: Sequence[int] | None, labeller: str) -> int:
        """Record ``labeller``'s ranking (positions of the query's items, best first; None: can't
        tell) of a pending ranking query; committed before it returns."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if ranking is None and self.query_kind(query_id) != "rank":
                raise ValueError(f"query {query_id} is no ranking query: answer it with a label or a rating")
            return self.record_answer(query_id, None, labeller, None, ranking)

    def rating_classes(self) -> int | None:
        """Points of the store's rating scale (None: it holds no rating queries)."""
        value = self.meta(RATING_CLASSES_KEY)
        return None if value is None else int(value)

    def rate(self, query_id: int, rating: int | None, labeller: str) -> int:
        """Record ``labeller``'s rating (None: can't tell) of a pending rating query; committed
        before it returns. ValueError (nothing written) as :meth:`answer`, or for a rating off the
        scale."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            return self.record_answer(query_id, None, labeller, rating)

    def ratings(self, trainable_only: bool = True) -> list[Rating]:
        """Every answer to a rating query, oldest first (by default without "can't tell")."""
        sql = (
            "SELECT c.id, c.segment_1, c.rating, c.labeller, c.answered_at FROM comparisons c "
            "JOIN queries q ON q.id = c.query_id WHERE q.kind = 'rate'"
        )
        sql += " AND c.rating IS NOT NULL" if trainable_only else ""
        return [Rating(*row) for row in self.db.execute(sql + " ORDER BY c.id")]

    def query_kind(self, query_id: int) -> str:
        """'compare' (two segments) or 'rate' (one)."""
        row = self.db.execute("SELECT kind FROM queries WHERE id = ?", (query_id,)).fetchone()
        if row is None:
            raise ValueError(f"no query {query_id}")
        return str(row[0])

    def answers_signature(self) -> tuple[int, int]:
        """(count, last id) of the trainable answers (comparisons and ratings): changes whenever one
        is added or removed."""
        row = self.db.execute(
            "SELECT COUNT(*), MAX(id) FROM comparisons WHERE label IS NOT NULL OR rating IS NOT NULL "
            "OR ranking IS NOT NULL"
        ).fetchone()
        return int(row[0]), int(row[1] or 0)

    def comparisons(self, trainable_only: bool = False) -> list[Comparison]:
        """Every answer to a comparison query, oldest first (ratings are :meth:`ratings`)."""
        sql = (
            "SELECT c.id, c.segment_1, c.segment_2, c.label, c.labeller, c.answered_at FROM comparisons c "
            "LEFT JOIN queries q ON q.id = c.query_id WHERE COALESCE(q.kind, 'compare') = 'compare'"
        )
        if trainable_only:
            sql += " AND c.label IS NOT NULL"
        return [Comparison(*row) for row in self.db.execute(sql + " ORDER BY c.id")]

    def num_comparisons(self) -> int:
        """Answers of every kind (comparisons and ratings, can't-tells included)."""
        return int(self.db.execute("SELECT COUNT(*) FROM comparisons").fetchone()[0])
