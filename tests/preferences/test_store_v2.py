"""Schemas 2 and 3: migrations from 1 and 2, render states, text pairs, k answers per query, the answers
signature, absorbing steps."""

import dataclasses
import sqlite3

import numpy as np
import pytest

from prefrl.datatypes import Segment
from prefrl.preferences.schema import SCHEMA_VERSION
from prefrl.preferences.schema import to_blob as _to_blob
from prefrl.preferences.store import PreferenceStore

V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, iteration INTEGER NOT NULL,
    obs BLOB NOT NULL, actions BLOB NOT NULL, true_rewards BLOB NOT NULL);
CREATE TABLE queries (
    id INTEGER PRIMARY KEY, segment_1 INTEGER NOT NULL REFERENCES segments(id),
    segment_2 INTEGER NOT NULL REFERENCES segments(id), created REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'answered')));
CREATE TABLE comparisons (
    id INTEGER PRIMARY KEY, query_id INTEGER UNIQUE REFERENCES queries(id),
    segment_1 INTEGER NOT NULL REFERENCES segments(id), segment_2 INTEGER NOT NULL REFERENCES segments(id),
    label REAL CHECK (label IS NULL OR label IN (0, 0.5, 1)), labeller TEXT NOT NULL,
    answered_at REAL NOT NULL);
CREATE INDEX queries_status ON queries(status);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO meta VALUES ('env_id', 'Pendulum-v1');
"""


def seg(k, s=4, state=False):
    render = np.full((s, 2), k, np.float64) if state else None
    return Segment(np.full((s, 3), k, np.float32), np.arange(s) % 2, np.full(s, float(k), np.float32), render)


def test_a_v1_store_is_migrated_with_its_answers(tmp_path):
    path = tmp_path / "p.sqlite"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.close()
    v1 = sqlite3.connect(path, isolation_level=None)  # rows with the v1 columns only
    blob = _to_blob
    for k in (1, 2):
        s = seg(k)
        v1.execute(
            "INSERT INTO segments (created, iteration, obs, actions, true_rewards) VALUES (0, 0, ?, ?, ?)",
            (blob(s.obs), blob(s.actions), blob(s.true_rewards)),
        )
    v1.execute("INSERT INTO queries (segment_1, segment_2, created) VALUES (1, 2, 0), (2, 1, 0)")
    v1.execute("INSERT INTO comparisons VALUES (1, 1, 1, 2, 1.0, 'alice', 0)")
    v1.execute("UPDATE queries SET status = 'answered' WHERE id = 1")
    v1.close()
    store = PreferenceStore(path, env_id="Pendulum-v1")
    assert store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
    assert [(c.label, c.labeller) for c in store.comparisons()] == [(1.0, "alice")]
    assert store.segments([1])[0].num_real is None  # all real
    assert store.segments([1])[0].render_state is None and store.segments([2])[0].true_return == 8.0
    assert store.pending_queries() == [(2, 2, 1)]
    store.answer(2, 0.5, "bob")
    store.close()
    assert len(PreferenceStore(path).comparisons()) == 2  # reopening a migrated store does not migrate again


def test_a_v2_store_gains_the_absorbing_steps_and_keeps_its_rows(tmp_path):
    path = tmp_path / "p.sqlite"
    store = PreferenceStore(path)
    a, b = store.add_segments([seg(1), seg(2)])
    store.answer(store.add_queries([(a, b)])[0], 1.0, "alice")
    as_schema_4(store)
    store.db.execute("ALTER TABLE segments DROP COLUMN num_real")  # as prefrl wrote schema 2
    store.db.execute("ALTER TABLE labellers DROP COLUMN token_expires")
    store.db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    store.close()
    store = PreferenceStore(path)
    assert store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
    assert [s.num_real for s in store.segments([a, b])] == [None, None]
    assert [c.label for c in store.comparisons()] == [1.0]
    padded = dataclasses.replace(seg(3), num_real=2)
    (c,) = store.add_segments([padded])
    assert store.segments([c])[0].num_real == 2 and store.segments([c])[0].mask.tolist() == [1, 1, 0, 0]


def test_a_v3_store_gains_token_expiry_and_its_labellers_keep_their_tokens(tmp_path):
    from prefrl.preferences.queue import LabelQueue

    path = tmp_path / "p.sqlite"
    store = PreferenceStore(path)
    token = LabelQueue(store).add_labeller("alice")
    as_schema_4(store)
    store.db.execute("ALTER TABLE labellers DROP COLUMN token_expires")  # as prefrl wrote schema 3
    store.db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    store.close()
    store = PreferenceStore(path)
    assert store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
    assert LabelQueue(store).labeller_for_token(token).name == "alice"


def test_render_states_round_trip_and_k_answers_per_query(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    a, b = store.add_segments([seg(1, state=True), seg(2)])
    got_a, got_b = store.segments([a, b])
    assert got_a.render_state.shape == (4, 2) and got_a.render_state[0, 0] == 1 and got_b.render_state is None
    (q,) = store.add_queries([(a, b)], redundancy=2)
    assert store.answers_signature() == (0, 0)
    store.answer(q, 1.0, "alice")
    assert store.num_pending() == 1  # one more answer wanted
    with pytest.raises(ValueError, match="already answered by alice"):
        store.answer(q, 0.0, "alice")
    second = store.answer(q, 0.0, "bob")
    assert store.num_pending() == 0 and store.answers_signature() == (2, second)
    with pytest.raises(ValueError, match="redundancy must be >= 1"):
        store.add_queries([(a, b)], redundancy=0)


def test_text_pairs(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    q = store.add_text_pair("2+2?", "4", "5")
    assert store.text_pair(q) == ("2+2?", "4", "5")
    store.answer(q, 1.0, "alice")
    (c,) = store.text_comparisons()
    assert (c.prompt, c.response_1, c.response_2, c.label) == ("2+2?", "4", "5", 1.0)
    a, b = store.add_segments([seg(1), seg(2)])
    assert store.text_pair(store.add_queries([(a, b)])[0]) is None


def as_schema_4(store):
    """Drop what schema 5 added (ratings), as prefrl wrote schema 4."""
    store.db.execute("ALTER TABLE queries DROP COLUMN kind")
    store.db.execute("ALTER TABLE comparisons DROP COLUMN rating")
    store.db.execute("ALTER TABLE comparisons DROP COLUMN ranking")
    store.db.execute("DROP TABLE query_items")
    store.db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")


def test_a_v4_store_gains_ratings_and_keeps_its_comparisons(tmp_path):
    path = tmp_path / "p.sqlite"
    store = PreferenceStore(path)
    a, b = store.add_segments([seg(1), seg(2)])
    store.answer(store.add_queries([(a, b)])[0], 1.0, "alice")
    as_schema_4(store)
    store.close()
    store = PreferenceStore(path)
    assert store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "5"
    assert [c.label for c in store.comparisons()] == [1.0] and store.ratings() == []
    (q,) = store.add_rating_queries([b], num_classes=5)
    store.rate(q, 3, "alice")
    assert [(r.segment, r.rating) for r in store.ratings()] == [(b, 3)]
    assert [c.label for c in store.comparisons()] == [1.0]  # a rating is no comparison
