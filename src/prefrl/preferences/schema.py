"""The preference store's on-disk format: the SQLite schema, its migrations from older versions, and
how arrays are kept in blobs."""

from __future__ import annotations

import io
import sqlite3
import zlib
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 5
"""1: segments, queries, one comparison per query. 2: render states and texts of segments, prompts,
redundancy and leases of queries, labellers, k answers per query. 3: the real steps of segments that
end in the absorbing state after termination. 4: labellers' token expiry. 5: ratings and K-way
rankings (a query's kind and its items, an answer's rating or ranking). Older stores are migrated
on open."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, iteration INTEGER NOT NULL,
    obs BLOB NOT NULL, actions BLOB NOT NULL, true_rewards BLOB NOT NULL,
    render_state BLOB, text TEXT, num_real INTEGER);
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY, segment_1 INTEGER NOT NULL REFERENCES segments(id),
    segment_2 INTEGER NOT NULL REFERENCES segments(id), created REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'answered')),
    prompt TEXT, redundancy INTEGER NOT NULL DEFAULT 1, leased_to TEXT, lease_expires REAL,
    kind TEXT NOT NULL DEFAULT 'compare' CHECK (kind IN ('compare', 'rate', 'rank')));
CREATE TABLE IF NOT EXISTS comparisons (
    id INTEGER PRIMARY KEY, query_id INTEGER REFERENCES queries(id),
    segment_1 INTEGER NOT NULL REFERENCES segments(id), segment_2 INTEGER NOT NULL REFERENCES segments(id),
    label REAL CHECK (label IS NULL OR label IN (0, 0.5, 1)), labeller TEXT NOT NULL,
    answered_at REAL NOT NULL, rating INTEGER CHECK (rating IS NULL OR rating >= 0), ranking TEXT,
    UNIQUE (query_id, labeller));
CREATE TABLE IF NOT EXISTS labellers (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, token_hash TEXT UNIQUE NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, token_expires REAL);
CREATE TABLE IF NOT EXISTS query_items (
    query_id INTEGER NOT NULL REFERENCES queries(id), position INTEGER NOT NULL,
    segment INTEGER NOT NULL REFERENCES segments(id), PRIMARY KEY (query_id, position));
CREATE INDEX IF NOT EXISTS queries_status ON queries(status);
CREATE INDEX IF NOT EXISTS comparisons_query ON comparisons(query_id);
"""
"""A rating query asks about one segment: its segment_2 is its segment_1, its kind 'rate'. Its
answers are rows of ``comparisons`` with label NULL and the rating (NULL: can't tell). A ranking
query (kind 'rank') asks to order K segments, listed in ``query_items`` by position (segment_1 and
segment_2 are the first two); its answers hold the ranking, a JSON list of positions best first."""

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
_MIGRATE_4_TO_5_QUERIES = """
ALTER TABLE queries ADD COLUMN kind TEXT NOT NULL DEFAULT 'compare'
    CHECK (kind IN ('compare', 'rate', 'rank'));
CREATE TABLE IF NOT EXISTS query_items (
    query_id INTEGER NOT NULL REFERENCES queries(id), position INTEGER NOT NULL,
    segment INTEGER NOT NULL REFERENCES segments(id), PRIMARY KEY (query_id, position));
"""
_MIGRATE_4_TO_5_ANSWERS = """
ALTER TABLE comparisons ADD COLUMN rating INTEGER CHECK (rating IS NULL OR rating >= 0);
ALTER TABLE comparisons ADD COLUMN ranking TEXT;
"""
_COPY_V1_COMPARISONS = """
INSERT INTO comparisons (id, query_id, segment_1, segment_2, label, labeller, answered_at)
SELECT id, query_id, segment_1, segment_2, label, labeller, answered_at FROM comparisons_v1;
DROP TABLE comparisons_v1;
"""
_MIGRATIONS = {
    "1": _MIGRATE_1_TO_2 + SCHEMA + _COPY_V1_COMPARISONS + _MIGRATE_2_TO_3 + _MIGRATE_4_TO_5_QUERIES,
    "2": _MIGRATE_2_TO_3 + _MIGRATE_3_TO_4 + _MIGRATE_4_TO_5_QUERIES + _MIGRATE_4_TO_5_ANSWERS,
    "3": _MIGRATE_3_TO_4 + _MIGRATE_4_TO_5_QUERIES + _MIGRATE_4_TO_5_ANSWERS,
    "4": _MIGRATE_4_TO_5_QUERIES + _MIGRATE_4_TO_5_ANSWERS,
}
"""Statements from each older version to SCHEMA_VERSION. 1 -> 2 rebuilds comparisons (as today's)
so that a query may hold one answer per labeller (k answers) instead of one in all."""


def create_or_migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new store, migrate an older one, refuse a newer one (ValueError)."""
    existing = db.execute("SELECT name FROM sqlite_master WHERE name = 'meta'").fetchone()
    if not existing:
        db.executescript(
            f"BEGIN; {SCHEMA} INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
        )
        return
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = row[0] if row else None
    if version in _MIGRATIONS:
        migrate(db)
    elif version != str(SCHEMA_VERSION):
        raise ValueError(
            f"{path} has preference-store schema {version}, this prefrl reads {SCHEMA_VERSION} (and "
            f"migrates 1 to {SCHEMA_VERSION - 1}): use the prefrl version that wrote it"
        )


def migrate(db: sqlite3.Connection) -> None:
    """An older schema -> SCHEMA_VERSION in one transaction (a no-op if another process already did)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        for statement in _MIGRATIONS.get(row[0], "").split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version'")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


NPY_MAGIC = b"\x93NUMPY"
"""How an uncompressed array blob starts (stores written before compression hold only those)."""


def to_blob(array: np.ndarray) -> bytes:
    """An array as .npy bytes; frames (uint8) zlib-compressed: stacked Atari frames repeat each frame
    4 times and compress about 20-fold."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    raw = buffer.getvalue()
    return zlib.compress(raw, 1) if array.dtype == np.uint8 else raw


def from_blob(blob: bytes) -> np.ndarray:
    raw = blob if blob.startswith(NPY_MAGIC) else zlib.decompress(blob)
    return np.load(io.BytesIO(raw), allow_pickle=False)
