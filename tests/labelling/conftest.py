import gymnasium as gym
import numpy as np
import pytest

from prefrl.datatypes import Segment
from prefrl.envs.render_state import RENDER_STATE_KEY, RenderStateInfo
from prefrl.preferences.queue import LabelQueue
from prefrl.preferences.store import PreferenceStore

pytest.importorskip("fastapi")


def pendulum_segments(num: int, length: int = 12, seed: int = 0) -> list[Segment]:
    """Real Pendulum-v1 segments with their render states (a random policy)."""
    env = RenderStateInfo(gym.make("Pendulum-v1"))
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    segments = []
    for _ in range(num):
        rows = []
        for _ in range(length):
            action = rng.uniform(-2, 2, size=1).astype(np.float32)
            state = info[RENDER_STATE_KEY]
            next_obs, reward, _, _, info = env.step(action)
            rows.append((obs, action, reward, state))
            obs = next_obs
        o, a, r, s = (np.stack(x) for x in zip(*rows, strict=True))
        segments.append(Segment(o.astype(np.float32), a, r.astype(np.float32), s))
    env.close()
    return segments


def make_run(run_dir, num_queries: int = 6, redundancy: int = 1, length: int = 12) -> dict:
    """A run directory with a Pendulum store of pending queries and labellers alice, bob (and
    admin); returns their tokens and the query ids."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text('{"kind": "rlhp", "config": {}}\n')
    with PreferenceStore(run_dir / "preferences.sqlite", env_id="Pendulum-v1") as store:
        ids = store.add_segments(pendulum_segments(2 * num_queries, length))
        queries = store.add_queries(zip(ids[0::2], ids[1::2], strict=True), redundancy)
        queue = LabelQueue(store)
        queue.set_budget(100)
        tokens = {name: queue.add_labeller(name) for name in ("alice", "bob", "carol", "dave")}
        tokens["admin"] = queue.add_labeller("admin", admin=True)
    return {"tokens": tokens, "queries": queries, "store": run_dir / "preferences.sqlite"}


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path / "run")


def comparisons(store_path) -> list[tuple[int, float | None, str]]:
    with PreferenceStore(store_path) as store:
        rows = store.db.execute("SELECT query_id, label, labeller FROM comparisons ORDER BY id").fetchall()
    return [tuple(r) for r in rows]


def make_rating_run(run_dir, num_queries: int = 3, length: int = 12, num_classes: int = 5) -> dict:
    """A run directory with a Pendulum store of pending rating queries and the labellers of
    :func:`make_run`."""
    run = make_run(run_dir, num_queries=0, length=length)
    with PreferenceStore(run["store"]) as store:
        ids = store.add_segments(pendulum_segments(num_queries, length, seed=1))
        run["queries"] = store.add_rating_queries(ids, num_classes)
    return run


def ratings(store_path) -> list[tuple[int, int | None, str]]:
    with PreferenceStore(store_path) as store:
        rows = store.db.execute("SELECT query_id, rating, labeller FROM comparisons ORDER BY id").fetchall()
    return [tuple(r) for r in rows]
