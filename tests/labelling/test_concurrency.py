"""Several labellers answering at once through real HTTP on loopback: no lost or double answers."""

import threading

import httpx
import pytest

from prefrl.labelling.server import start_background

from .conftest import comparisons, make_run

NAMES = ("alice", "bob", "carol", "dave")


@pytest.fixture
def served(tmp_path):
    run = make_run(tmp_path / "run", num_queries=40, length=3)
    server, url = start_background(run["store"], "127.0.0.1", 0, 300, render_ahead=None)
    assert url.startswith(server.url + "/?token=")
    yield run, server.url
    server.stop()


def label_until_done(base_url, token, acked, failures):
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while (query := client.get("/api/next").json()["query"]) is not None:
            choice = ("left", "right", "equal", "cant_tell")[query["id"] % 4]
            response = client.post("/api/answer", json={"query_id": query["id"], "choice": choice})
            (acked if response.status_code == 200 else failures).append((query["id"], response.text))


def test_four_labellers_at_once_answer_every_query_exactly_once(served):
    run, base_url = served
    acked = {name: [] for name in NAMES}
    failures = []
    threads = [
        threading.Thread(target=label_until_done, args=(base_url, run["tokens"][n], acked[n], failures))
        for n in NAMES
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []  # a leased query is never answered by someone else
    rows = comparisons(run["store"])
    assert sorted(q for q, _, _ in rows) == sorted(run["queries"])  # every query once, none twice
    assert {(q, name) for name in NAMES for q, _ in acked[name]} == {(q, name) for q, _, name in rows}
    assert sum(len(a) > 0 for a in acked.values()) >= 2  # the work was shared


def test_the_same_answer_sent_twice_at_once_is_written_once(served):
    run, base_url = served
    headers = {"Authorization": f"Bearer {run['tokens']['alice']}"}
    query = httpx.get(f"{base_url}/api/next", headers=headers).json()["query"]["id"]
    statuses = []

    def send():
        body = {"query_id": query, "choice": "left"}
        statuses.append(httpx.post(f"{base_url}/api/answer", json=body, headers=headers).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409, 409, 409, 409, 409]
    assert comparisons(run["store"]) == [(query, 1.0, "alice")]
