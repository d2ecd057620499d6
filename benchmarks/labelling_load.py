"""The labelling app under simulated people (issue 16's target): ``--people`` labellers at human pace
(one answer every 3-5 s each, after both clips of the query have loaded) on Hopper-v5 clips, for
``--minutes``, through real HTTP on loopback. Reports the 5xx count, the wait for a query's two clips
(median, 95th percentile, worst), answers per minute, and whether every acknowledged answer is in the
store. The segments are a random policy's (1.5 s each, rendered from their MuJoCo states on demand
and in advance, by the app's render pool).

    .venv/bin/python benchmarks/labelling_load.py --people 8 --minutes 10
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from prefrl.datatypes import Segment  # noqa: E402
from prefrl.envs.make import make_env  # noqa: E402
from prefrl.envs.render_state import RENDER_STATE_KEY, RenderStateInfo  # noqa: E402
from prefrl.labelling.server import start_background  # noqa: E402
from prefrl.preferences.queue import LabelQueue  # noqa: E402
from prefrl.preferences.segments import default_segment_length  # noqa: E402
from prefrl.preferences.store import PreferenceStore  # noqa: E402


def hopper_segments(num: int, seed: int = 0) -> list[Segment]:
    """``num`` random-policy Hopper-v5 segments (without early termination) with their states."""
    env = RenderStateInfo(make_env("Hopper-v5", terminate_when_unhealthy=False))
    length = default_segment_length("Hopper-v5")
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    segments = []
    for _ in range(num):
        rows = []
        for _ in range(length):
            action = rng.uniform(-1, 1, size=3).astype(np.float32)
            state = info[RENDER_STATE_KEY]
            next_obs, reward, _, truncated, info = env.step(action)
            rows.append((obs, action, reward, state))
            obs = next_obs
            if truncated:
                obs, info = env.reset()
        o, a, r, s = (np.stack(x) for x in zip(*rows, strict=True))
        segments.append(Segment(o.astype(np.float32), a, r.astype(np.float32), s))
    env.close()
    return segments


def person(url: str, token: str, stop: float, record: dict, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=180) as client:
        while time.monotonic() < stop:
            response = client.get("/api/next")
            record["status"].append(response.status_code)
            query = response.json().get("query") if response.status_code == 200 else None
            if query is None:
                time.sleep(1.0)
                continue
            start = time.monotonic()
            statuses = [client.get(clip).status_code for clip in query["clips"]]
            record["status"] += statuses
            record["waits"].append(time.monotonic() - start)
            time.sleep(rng.uniform(3.0, 5.0))  # watching, deciding
            answer = client.post("/api/answer", json={"query_id": query["id"], "choice": "left"})
            record["status"].append(answer.status_code)
            if answer.status_code == 200:
                record["acked"].append(query["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--queries", type=int, default=None, help="default: enough for everyone")
    args = parser.parse_args()
    num_queries = args.queries or int(args.people * args.minutes * 60 / 3) + 10
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "preferences.sqlite"
        with PreferenceStore(store_path, env_id="Hopper-v5") as store:
            ids = store.add_segments(hopper_segments(2 * num_queries))
            store.add_queries(zip(ids[0::2], ids[1::2], strict=True))
            queue = LabelQueue(store)
            tokens = [queue.add_labeller(f"person{i}") for i in range(args.people)]
        server, _ = start_background(store_path, "127.0.0.1", 0, lease_seconds=300)
        record: dict = {"status": [], "waits": [], "acked": []}
        stop = time.monotonic() + args.minutes * 60
        threads = [
            threading.Thread(target=person, args=(server.url, token, stop, record, i))
            for i, token in enumerate(tokens)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        server.stop()
        with PreferenceStore(store_path) as store:
            stored = {int(row[0]) for row in store.db.execute("SELECT query_id FROM comparisons")}
    waits = sorted(record["waits"])
    p95 = waits[int(0.95 * (len(waits) - 1))] if waits else float("nan")
    errors = sum(s >= 500 for s in record["status"])
    print(f"{args.people} people, {args.minutes:g} min, Hopper-v5 clips: {len(record['acked'])} answers "
          f"({len(record['acked']) / args.minutes:.0f}/min), {errors} responses 5xx")  # fmt: skip
    if waits:
        print(f"wait for a query's two clips: median {statistics.median(waits):.2f} s, 95th percentile "
              f"{p95:.2f} s, worst {waits[-1]:.2f} s (target: 95th under 1 s)")  # fmt: skip
    print(f"every acknowledged answer in the store: {set(record['acked']) <= stored}")


if __name__ == "__main__":
    main()
