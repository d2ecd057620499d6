"""Every endpoint of the labelling app, and every bad request: a 4xx with a clear message, nothing
written."""

import json
import time

import pytest
from fastapi.testclient import TestClient

from prefrl.labelling.app import create_app
from prefrl.preferences.store import PreferenceStore

from .conftest import comparisons


@pytest.fixture
def client(run):
    with TestClient(create_app(run["store"], render_ahead=None)) as client:
        yield client


def auth(run, name="alice"):
    return {"Authorization": f"Bearer {run['tokens'][name]}"}


def test_the_page_and_a_query_of_two_playable_clips(run, client):
    page = client.get("/", params={"token": run["tokens"]["alice"]})
    assert page.status_code == 200 and "alice" in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    data = client.get("/api/next", headers=auth(run)).json()
    query = data["query"]
    assert query["id"] == run["queries"][0] and query["kind"] == "clips"
    assert query["description"].startswith("Which pendulum")
    assert data["progress"] == {"answered": 0, "budget": 100, "pending": 6, "yours": 0}
    for url in query["clips"]:
        clip = client.get(url, headers=auth(run))
        assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
        assert clip.content[4:8] == b"ftyp" and len(clip.content) > 1000
    assert len(list((run["store"].parent / "clips").glob("*.mp4"))) == 2  # cached beside the store
    again = client.get("/api/next", headers=auth(run)).json()["query"]
    assert again["id"] == query["id"]  # the lease holds: the same query until answered


def test_answers_undo_and_progress(run, client):
    q1 = client.get("/api/next", headers=auth(run)).json()["query"]["id"]
    saved = client.post("/api/answer", json={"query_id": q1, "choice": "left"}, headers=auth(run)).json()
    assert saved["saved"] and saved["progress"]["answered"] == 1 and saved["progress"]["yours"] == 1
    assert comparisons(run["store"]) == [(q1, 1.0, "alice")]
    q2 = client.get("/api/next", headers=auth(run)).json()["query"]["id"]
    assert q2 != q1
    for choice, label in [("equal", 0.5), ("cant_tell", None)]:
        client.post("/api/answer", json={"query_id": q2, "choice": choice}, headers=auth(run))
        assert comparisons(run["store"])[-1] == (q2, label, "alice")
        undone = client.post("/api/undo", headers=auth(run)).json()
        assert undone["undone"] == q2 and comparisons(run["store"]) == [(q1, 1.0, "alice")]
        assert client.get("/api/next", headers=auth(run)).json()["query"]["id"] == q2  # leased back
    client.post("/api/answer", json={"query_id": q2, "choice": "right"}, headers=auth(run))
    assert comparisons(run["store"]) == [(q1, 1.0, "alice"), (q2, 0.0, "alice")]
    progress = client.get("/api/progress", headers=auth(run)).json()
    assert progress == {"answered": 2, "budget": 100, "pending": 4, "yours": 2}


def test_no_pending_query_says_waiting_for_new_clips(tmp_path):
    from .conftest import make_run

    run = make_run(tmp_path / "run", num_queries=1)
    with TestClient(create_app(run["store"], render_ahead=None)) as client:
        q = client.get("/api/next", headers=auth(run)).json()["query"]["id"]
        assert client.get("/api/next", headers=auth(run, "bob")).json()["query"] is None  # leased
        client.post("/api/answer", json={"query_id": q, "choice": "left"}, headers=auth(run))
        data = client.get("/api/next", headers=auth(run)).json()
        assert data["query"] is None and data["message"] == "waiting for new clips"


def bad(client, method, url, status, message, **kw):
    response = client.request(method, url, **kw)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_bad_requests_get_a_4xx_with_a_message_and_write_nothing(run, client):
    q = client.get("/api/next", headers=auth(run)).json()["query"]["id"]
    other = client.get("/api/next", headers=auth(run, "bob")).json()["query"]["id"]
    before = comparisons(run["store"])
    body = {"query_id": q, "choice": "left"}
    for method, url in [("GET", "/api/next"), ("POST", "/api/answer"), ("POST", "/api/undo"),
                        ("GET", "/api/progress"), ("GET", "/clips/1.mp4"), ("GET", "/admin"),
                        ("GET", "/api/stats")]:  # fmt: skip
        bad(client, method, url, 401, "no valid token", json=body)
        bad(client, method, url, 401, "no valid token", json=body, headers={"Authorization": "Bearer nope"})
        bad(client, method, url + "?token=nope", 401, "no valid token", json=body)
    h = auth(run)
    bad(
        client,
        "POST",
        "/api/answer",
        400,
        "unknown choice 'up'",
        json={"query_id": q, "choice": "up"},
        headers=h,
    )
    bad(
        client,
        "POST",
        "/api/answer",
        404,
        "no query 999",
        json={"query_id": 999, "choice": "left"},
        headers=h,
    )
    bad(client, "POST", "/api/answer", 409, "leased to another labeller",
        json={"query_id": other, "choice": "left"}, headers=h)  # fmt: skip
    bad(client, "POST", "/api/answer", 409, "not leased to you",
        json={"query_id": run["queries"][-1], "choice": "left"}, headers=h)  # fmt: skip
    bad(client, "POST", "/api/answer", 422, "query_id", json={"choice": "left"}, headers=h)
    bad(client, "POST", "/api/answer", 422, "bad request", content=b"not json", headers=h)
    bad(client, "POST", "/api/undo", 409, "nothing to undo", headers=h)
    bad(client, "GET", "/admin", 403, "not an admin", headers=h)
    bad(client, "GET", "/api/stats", 403, "not an admin", headers=h)
    bad(client, "GET", "/clips/999.mp4", 404, "no segment 999", headers=h)
    assert comparisons(run["store"]) == before == []
    client.post("/api/answer", json=body, headers=h)
    bad(client, "POST", "/api/answer", 409, "already answered", json=body, headers=h)
    bad(client, "POST", "/api/answer", 409, "already answered", json=body, headers=auth(run, "bob"))
    assert comparisons(run["store"]) == [(q, 1.0, "alice")]


def test_an_expired_lease_returns_the_query_to_the_pool(run):
    with TestClient(create_app(run["store"], lease_seconds=0.2, render_ahead=None)) as client:
        q = client.get("/api/next", headers=auth(run)).json()["query"]["id"]
        assert client.get("/api/next", headers=auth(run, "bob")).json()["query"]["id"] != q
        time.sleep(0.3)
        assert client.get("/api/next", headers=auth(run, "carol")).json()["query"]["id"] == q
        bad(client, "POST", "/api/answer", 409, "leased to another labeller",
            json={"query_id": q, "choice": "left"}, headers=auth(run))  # fmt: skip
        assert comparisons(run["store"]) == []


def test_k_answers_per_query_and_agreement_on_the_admin_page(tmp_path):
    from .conftest import make_run

    run = make_run(tmp_path / "run", num_queries=2, redundancy=2)
    with TestClient(create_app(run["store"], render_ahead=None)) as client:
        answers = {"alice": ["left", "left"], "bob": ["left", "right"]}
        for name, choices in answers.items():
            for choice in choices:
                q = client.get("/api/next", headers=auth(run, name)).json()["query"]["id"]
                client.post("/api/answer", json={"query_id": q, "choice": choice}, headers=auth(run, name))
        assert client.get("/api/next", headers=auth(run, "carol")).json()["query"] is None  # 2 answers each
        stats = client.get("/api/stats", headers=auth(run, "admin")).json()
        assert stats["unanimous_fraction"] == 0.5
        assert stats["labellers"]["alice"]["agreement"] == 0.5 and stats["labellers"]["bob"]["shared"] == 2
        page = client.get("/admin", headers=auth(run, "admin"))
        assert page.status_code == 200 and "alice" in page.text and "50%" in page.text
        assert (
            "No training has reported" in page.text
            and f'href="/?token={run["tokens"]["admin"]}"' in page.text
        )
        with PreferenceStore(run["store"]) as store:
            store.set_meta("training_status", '{"step": 2048, "total_steps": 10000, "reward_fitted": true, '
                           '"answers_fitted": 25, "min_labels": 20}')  # fmt: skip
        page = client.get("/admin", headers=auth(run, "admin")).text
        assert "step 2,048 of 10,000" in page and "paid the learned reward (fitted on 25 answers)" in page


def test_text_pairs_show_a_prompt_and_two_responses(tmp_path):
    from prefrl.preferences.queue import LabelQueue

    path = tmp_path / "lm" / "preferences.sqlite"
    with PreferenceStore(path) as store:
        q = store.add_text_pair("Name a colour.", "Blue.", "A colour is a property of light.")
        token = LabelQueue(store).add_labeller("alice")
    with TestClient(create_app(path)) as client:
        h = {"Authorization": f"Bearer {token}"}
        query = client.get("/api/next", headers=h).json()["query"]
        assert query == {**query, "id": q, "kind": "text", "prompt": "Name a colour.",
                         "responses": ["Blue.", "A colour is a property of light."]}  # fmt: skip
        assert query["description"] == "Which response answers the prompt better?"
        assert client.post("/api/answer", json={"query_id": q, "choice": "left"}, headers=h).json()["saved"]
        bad(client, "GET", "/clips/1.mp4", 404, "text pairs", headers=h)
    with PreferenceStore(path) as store:
        (answer,) = store.text_comparisons()
    assert (answer.prompt, answer.response_1, answer.label, answer.labeller) == (
        "Name a colour.", "Blue.", 1.0, "alice",
    )  # fmt: skip


def test_the_outsiders_probe_ids_sizes_and_the_token_before_the_body(run, client):
    h = auth(run)
    q = client.get("/api/next", headers=h).json()["query"]["id"]
    for query_id in (2**64, -1, 0, "405", 405.0, True, None):  # out of SQLite's range, or not an int
        bad(
            client,
            "POST",
            "/api/answer",
            422,
            "query_id",
            json={"query_id": query_id, "choice": "left"},
            headers=h,
        )
    bad(client, "GET", f"/clips/{2**64}.mp4", 422, "segment_id", headers=h)
    padded = json.dumps({"query_id": q, "choice": "left", "pad": "x" * 1_000_000})
    bad(client, "POST", "/api/answer", 413, "request body over", content=padded, headers=h)
    long_choice = client.post("/api/answer", json={"query_id": q, "choice": "x" * 100_0}, headers=h)
    assert long_choice.status_code == 422 and len(long_choice.text) < 600  # not echoed back
    bad(client, "POST", "/api/answer", 401, "no valid token", content=b"not json")  # who before what
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404
    page = client.get("/?token=nope")
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert "This link does not work" in page.text
    assert comparisons(run["store"]) == []


def test_undo_takes_back_only_the_answer_the_page_saved(run, client):
    h = auth(run)
    q1 = client.get("/api/next", headers=h).json()["query"]["id"]
    client.post("/api/answer", json={"query_id": q1, "choice": "left"}, headers=h)
    q2 = client.get("/api/next", headers=h).json()["query"]["id"]
    bad(
        client,
        "POST",
        "/api/undo",
        409,
        f"your last answer is to query {q1}",
        json={"query_id": q2},
        headers=h,
    )
    assert client.post("/api/undo", json={"query_id": q1}, headers=h).json()["undone"] == q1
    assert comparisons(run["store"]) == []


def test_labellers_removed_demoted_and_expiring(run, client):
    from prefrl.preferences.queue import LabelQueue

    q = client.get("/api/next", headers=auth(run, "bob")).json()["query"]["id"]
    with PreferenceStore(run["store"]) as store:
        queue = LabelQueue(store)
        queue.remove_labeller("bob")
        queue.set_admin("admin", False)
        short = queue.add_labeller("erin", expires_days=1e-9)
        with pytest.raises(ValueError, match="no labeller 'zed'"):
            queue.remove_labeller("zed")
    bad(client, "GET", "/api/next", 401, "no valid token", headers=auth(run, "bob"))
    assert client.get("/api/next", headers=auth(run, "carol")).json()["query"]["id"] == q  # back in the pool
    bad(client, "GET", "/api/stats", 403, "not an admin", headers=auth(run, "admin"))
    bad(client, "GET", "/api/next", 401, "no valid token", headers={"Authorization": f"Bearer {short}"})


def test_labeller_commands(run, capsys):
    from prefrl.cli.main import main

    run_dir = str(run["store"].parent)
    assert main(["label", "add-labeller", "frank", "--run-dir", run_dir, "--expires-days", "7"]) == 0
    assert "?token=" in capsys.readouterr().out
    assert main(["label", "set-admin", "frank", "--run-dir", run_dir]) == 0
    assert main(["label", "set-admin", "frank", "--run-dir", run_dir, "--no-admin"]) == 0
    assert main(["label", "remove-labeller", "frank", "--run-dir", run_dir]) == 0
    assert main(["label", "remove-labeller", "frank", "--run-dir", run_dir]) == 2
    assert "no labeller 'frank'" in capsys.readouterr().err


def test_rating_queries_show_one_clip_and_take_a_rating(tmp_path):
    from .conftest import make_rating_run, ratings

    run = make_rating_run(tmp_path / "run")
    with TestClient(create_app(run["store"], render_ahead=None)) as client:
        query = client.get("/api/next", headers=auth(run)).json()["query"]
        assert query["kind"] == "rate" and query["classes"] == 5 and len(query["clips"]) == 1
        assert query["description"].startswith("Rate this clip on its own, 1 (worst) to 5 (best)")
        clip = client.get(query["clips"][0], headers=auth(run))
        assert clip.status_code == 200 and clip.content[4:8] == b"ftyp"
        q = query["id"]
        for body, status, message in [
            ({"query_id": q, "choice": "left"}, 422, "asks for a rating"),
            ({"query_id": q}, 422, "asks for a rating"),
            ({"query_id": q, "rating": 5}, 422, "from 0 (worst) to 4"),
            ({"query_id": q, "rating": "3"}, 422, "bad request"),
            ({"query_id": q, "rating": 2.0}, 422, "bad request"),
        ]:
            answer = client.post("/api/answer", json=body, headers=auth(run))
            assert (answer.status_code, message in answer.json()["detail"]) == (status, True), body
        assert ratings(run["store"]) == []  # nothing written
        saved = client.post("/api/answer", json={"query_id": q, "rating": 4}, headers=auth(run)).json()
        assert saved["saved"] and ratings(run["store"]) == [(q, 4, "alice")]
        q2 = client.get("/api/next", headers=auth(run)).json()["query"]["id"]
        client.post("/api/answer", json={"query_id": q2, "choice": "cant_tell"}, headers=auth(run))
        assert ratings(run["store"])[-1] == (q2, None, "alice")
        assert client.post("/api/undo", headers=auth(run)).json()["undone"] == q2


def test_a_rating_is_refused_for_a_comparison(run, client):
    q = client.get("/api/next", headers=auth(run)).json()["query"]["id"]
    answer = client.post("/api/answer", json={"query_id": q, "rating": 1}, headers=auth(run))
    assert answer.status_code == 422 and "compares two clips" in answer.json()["detail"]
    assert comparisons(run["store"]) == []
