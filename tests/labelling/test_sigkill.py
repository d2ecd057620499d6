"""Kill the server with SIGKILL in the middle of a labelling session and restart it: every
acknowledged answer is there, leases are recovered, nothing is duplicated."""

import os
import re
import signal
import subprocess
import sys
import threading

import httpx

from .conftest import comparisons, make_run

CHOICES = ("left", "right", "equal", "cant_tell")
LABELS = {"left": 1.0, "right": 0.0, "equal": 0.5, "cant_tell": None}


def start_server(run_dir):
    """`prefrl label RUN_DIR --port 0` in a subprocess; returns it and its base URL."""
    env = dict(os.environ, MUJOCO_GL="egl", SDL_VIDEODRIVER="dummy")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefrl", "label", str(run_dir), "--port", "0"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    for line in proc.stderr:
        if match := re.search(r"label at (http://[\d.:]+)/\?token=", line):
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, match.group(1)
    raise AssertionError(f"the server did not start (exit {proc.wait()})")


def label(base_url, token, acked, stop):
    """Answer until told to stop or the server is gone; an answer is acknowledged by its 200."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        try:
            while not stop.is_set() and (query := c.get("/api/next").json()["query"]) is not None:
                choice = CHOICES[query["id"] % 4]
                if c.post("/api/answer", json={"query_id": query["id"], "choice": choice}).status_code == 200:
                    acked.append(query["id"])
        except httpx.HTTPError:
            pass  # killed mid-request: that answer was not acknowledged


def test_sigkill_mid_session_loses_no_acknowledged_answer(tmp_path):
    run = make_run(tmp_path / "run", num_queries=60, length=2)
    tokens = run["tokens"]
    proc, url = start_server(tmp_path / "run")
    bob = {"Authorization": f"Bearer {tokens['bob']}"}
    held = httpx.get(f"{url}/api/next", headers=bob).json()["query"]["id"]  # bob holds a lease
    acked, stop = [], threading.Event()
    worker = threading.Thread(target=label, args=(url, tokens["alice"], acked, stop))
    worker.start()
    while len(acked) < 20 and worker.is_alive():
        worker.join(timeout=0.01)
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of alice's session
    proc.wait()
    worker.join(timeout=30)
    assert 20 <= len(acked) < 59
    rows = comparisons(run["store"])
    by_query = {q: label for q, label, _ in rows}
    assert len(by_query) == len(rows)  # nothing duplicated
    for q in acked:
        assert by_query[q] == LABELS[CHOICES[q % 4]]  # every acknowledged answer is there
    proc, url = start_server(tmp_path / "run")
    try:
        assert httpx.get(f"{url}/api/next", headers=bob).json()["query"]["id"] == held  # lease recovered
        rest, stop = [], threading.Event()
        label(url, tokens["alice"], rest, stop)
        answer = {"query_id": held, "choice": "left"}
        assert httpx.post(f"{url}/api/answer", json=answer, headers=bob).status_code == 200
    finally:
        proc.kill()
        proc.wait()
    rows = comparisons(run["store"])
    assert sorted(q for q, _, _ in rows) == sorted(run["queries"])  # all answered, each once
    assert held not in rest + acked
