import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from prefrl.datatypes import Segment
from prefrl.preferences.exchange import export_jsonl, import_jsonl
from prefrl.preferences.store import PreferenceStore


def seg(k, s=4):
    return Segment(np.full((s, 3), k, np.float32), np.arange(s) % 2, np.full(s, float(k), np.float32))


def test_segments_queries_and_answers_round_trip(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    ids = store.add_segments([seg(1), seg(2), seg(3)], iteration=5)
    got = store.segments([ids[2], ids[0]])
    assert (
        got[0].true_return == 12.0 and got[1].obs.shape == (4, 3) and got[1].actions.tolist() == [0, 1, 0, 1]
    )
    q = store.add_queries([(ids[0], ids[1]), (ids[1], ids[2]), (ids[0], ids[2])])
    assert [p[0] for p in store.pending_queries()] == q
    store.answer(q[0], 1.0, "alice")
    store.answer(q[1], None, "bob")  # can't tell: recorded, not trained on
    store.answer(q[2], 0.5, "alice")
    assert store.pending_queries() == []
    assert [c.label for c in store.comparisons()] == [1.0, None, 0.5]
    assert [c.label for c in store.comparisons(trainable_only=True)] == [1.0, 0.5]
    store.close()
    reopened = PreferenceStore(tmp_path / "p.sqlite")  # everything is on disk
    assert reopened.num_comparisons() == 3 and reopened.num_segments() == 3


def test_bad_answers_write_nothing(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    a, b = store.add_segments([seg(1), seg(2)])
    (q,) = store.add_queries([(a, b)])
    for bad_query, label, message in [
        (q, 0.7, "label must be"),
        (q + 99, 1.0, "no query"),
        (q, "left", "label"),
    ]:
        with pytest.raises(ValueError, match=message):
            store.answer(bad_query, label, "alice")
    store.answer(q, 0.0, "alice")
    with pytest.raises(ValueError, match="already answered"):
        store.answer(q, 1.0, "bob")
    assert [(c.label, c.labeller) for c in store.comparisons()] == [(0.0, "alice")]
    with pytest.raises(ValueError, match="no segments"):
        store.segments([12345])


def test_export_import_jsonl(tmp_path):
    store = PreferenceStore(tmp_path / "a.sqlite")
    a, b = store.add_segments([seg(1), seg(2)])
    q = store.add_queries([(a, b), (b, a)])
    store.answer(q[0], 1.0, "alice")
    store.answer(q[1], None, "bob")
    assert export_jsonl(store, tmp_path / "c.jsonl") == 2
    other = PreferenceStore(tmp_path / "b.sqlite")
    assert import_jsonl(other, tmp_path / "c.jsonl") == 2
    assert [(c.label, c.labeller) for c in other.comparisons()] == [(1.0, "alice"), (None, "bob")]
    s1, s2 = other.segments([other.comparisons()[0].segment_1, other.comparisons()[0].segment_2])
    assert s1.true_return == 4.0 and s2.true_return == 8.0
    (tmp_path / "bad.jsonl").write_text('{"label": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        import_jsonl(other, tmp_path / "bad.jsonl")


def test_schema_version_is_checked(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    store.db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(ValueError, match="schema 99"):
        PreferenceStore(tmp_path / "p.sqlite")


ANSWERING = textwrap.dedent("""
    import sys, numpy as np
    from prefrl.datatypes import Segment
    from prefrl.preferences.store import PreferenceStore
    store = PreferenceStore(sys.argv[1])
    for query, _, _ in store.pending_queries():
        store.answer(query, [0.0, 0.5, 1.0][query % 3], "worker")
        print(query, flush=True)  # acknowledged only after answer() has committed
""")


def test_a_killed_process_loses_no_acknowledged_answer(tmp_path):
    path = tmp_path / "p.sqlite"
    store = PreferenceStore(path)
    ids = store.add_segments([seg(k) for k in range(10)])
    store.add_queries([(ids[k % 10], ids[(k + 1) % 10]) for k in range(5000)])
    store.close()
    proc = subprocess.Popen([sys.executable, "-c", ANSWERING, str(path)], stdout=subprocess.PIPE, text=True)
    acked = [int(proc.stdout.readline()) for _ in range(50)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reopened = PreferenceStore(path)
    answered = {c.id: c for c in reopened.comparisons()}
    by_query = {row[0]: row for row in reopened.db.execute("SELECT query_id, label FROM comparisons")}
    assert 50 <= len(answered) < 5000  # killed part-way
    for query in acked:
        assert by_query[query][1] == [0.0, 0.5, 1.0][query % 3]
    pending = {q for q, _, _ in reopened.pending_queries()}
    assert pending.isdisjoint(by_query) and len(pending) + len(by_query) == 5000  # nothing half-written


def test_a_store_belongs_to_one_env(tmp_path):
    PreferenceStore(tmp_path / "p.sqlite", env_id="Pendulum-v1").close()
    PreferenceStore(tmp_path / "p.sqlite", env_id="Pendulum-v1").close()
    with pytest.raises(ValueError, match="holds segments of Pendulum-v1, not Hopper-v5"):
        PreferenceStore(tmp_path / "p.sqlite", env_id="Hopper-v5")
