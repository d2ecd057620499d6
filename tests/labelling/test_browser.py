"""The real page in Debian's Chromium: two playing clips, answers by keyboard, undo, answer again; the
store holds exactly the expected answers. Fails (not skips) under CI when Chromium is missing."""

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from prefrl.labelling.server import start_background

from .conftest import comparisons, make_run

CHROMIUM = Path("/usr/bin/chromium")


def require_browser():
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright package is missing: pip install -e '.[dev]'"
    if missing and os.environ.get("CI"):
        pytest.fail(missing)
    elif missing:
        pytest.skip(missing)


@contextmanager
def open_page(store_path, token, width=1200, height=800):
    """The app served over ``store_path``, opened in Chromium with ``token``; yields the page."""
    require_browser()
    from playwright.sync_api import sync_playwright

    server, _ = start_background(store_path, "127.0.0.1", 0, lease_seconds=300)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{server.url}/?token={token}")
            yield page
            browser.close()
    finally:
        server.stop()


@pytest.fixture
def page(tmp_path):
    run = make_run(tmp_path / "run", num_queries=3, length=30)  # 1.5 s Pendulum clips
    with open_page(run["store"], run["tokens"]["alice"]) as page:
        yield page, run


def wait_for_query(page, query_id):
    page.wait_for_function(
        f"document.body.dataset.busy === '0' && document.body.dataset.query === '{query_id}'", timeout=30_000
    )


def test_label_with_the_keyboard_undo_and_answer_again(page, tmp_path):
    page, run = page
    q1, q2, _ = run["queries"]
    wait_for_query(page, q1)
    page.wait_for_function(  # both clips are playing
        "[...document.querySelectorAll('#clips video')]"
        ".every(v => v.currentTime > 0.1 && !v.paused && v.videoWidth > 0)",
        timeout=60_000,
    )
    assert page.inner_text("#description").startswith("Which pendulum")
    assert "answered 0 of budget 100" in page.inner_text("#progress")
    page.keyboard.press("ArrowLeft")
    wait_for_query(page, q2)
    assert f"saved: query {q1} → left" in page.inner_text("#status")
    assert comparisons(run["store"]) == [(q1, 1.0, "alice")]
    page.keyboard.press("u")  # undo: q1 comes back
    wait_for_query(page, q1)
    assert comparisons(run["store"]) == []
    page.keyboard.press("ArrowRight")
    wait_for_query(page, q2)
    page.keyboard.press("ArrowUp")
    wait_for_query(page, run["queries"][2])
    page.keyboard.press("ArrowDown")
    page.wait_for_function("document.body.dataset.busy === '0' && document.body.dataset.query === ''")
    assert "waiting for new clips" in page.inner_text("#message")
    assert comparisons(run["store"]) == [
        (q1, 0.0, "alice"),
        (q2, 0.5, "alice"),
        (run["queries"][2], None, "alice"),
    ]
    assert "answered 3 of budget 100 · pending 0 · yours 3" in page.inner_text("#progress")
    assert not page.is_visible("#buttons") and not page.is_visible("#clips")  # waiting shows only that


def test_at_800_by_600_everything_is_above_the_fold(page):
    page, run = page
    page.set_viewport_size({"width": 800, "height": 600})
    wait_for_query(page, run["queries"][0])
    page.wait_for_function(
        "[...document.querySelectorAll('#clips video')].every(v => v.videoWidth > 0)", timeout=60_000
    )
    for selector in ("#buttons", "#undo"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 600, (selector, box)


def test_a_lost_lease_moves_on_and_undo_never_takes_an_earlier_answer(page):
    from prefrl.preferences.queue import LabelQueue
    from prefrl.preferences.store import PreferenceStore

    page, run = page
    q1, q2, q3 = run["queries"]
    wait_for_query(page, q1)
    page.keyboard.press("ArrowLeft")  # a valid answer to q1
    wait_for_query(page, q2)
    with PreferenceStore(run["store"]) as store:  # q2's lease runs out and bob takes and answers it
        store.db.execute("UPDATE queries SET lease_expires = 0 WHERE id = ?", (q2,))
        queue = LabelQueue(store)
        bob = queue.labeller_for_token(run["tokens"]["bob"])
        assert queue.lease(bob).query_id == q2
        queue.answer(q2, bob, "right")
    page.keyboard.press("ArrowLeft")  # alice's answer to q2 comes too late
    wait_for_query(page, q3)
    assert "not saved" in page.inner_text("#status")
    page.keyboard.press("u")
    page.wait_for_function("document.body.dataset.busy === '0'")
    assert "nothing to undo" in page.inner_text("#status")
    assert comparisons(run["store"]) == [(q1, 1.0, "alice"), (q2, 0.0, "bob")]  # q1 kept


def test_people_compare_two_answers_to_a_prompt(tmp_path):
    from prefrl.preferences.queue import LabelQueue
    from prefrl.preferences.store import PreferenceStore

    run_dir = tmp_path / "pairs"
    run_dir.mkdir()
    (run_dir / "config.json").write_text('{"kind": "lm-pairs", "config": {}}\n')
    with PreferenceStore(run_dir / "preferences.sqlite") as store:
        q1 = store.add_text_pair("review of the soup :", "the soup was great .", "<b>bad</b> soup .")
        q2 = store.add_text_pair("review of the cake :", "fine cake .", "the cake was great .")
        token = LabelQueue(store).add_labeller("alice")
    with open_page(run_dir / "preferences.sqlite", token, 800, 600) as page:
        wait_for_query(page, q1)
        assert page.is_visible("#prompt") and not page.is_visible("#clips")  # no empty video boxes
        assert page.inner_text("#prompt") == "review of the soup :"
        assert page.inner_text("#response-right") == "<b>bad</b> soup ."  # text, never HTML
        assert page.inner_text("#description") == "Which response answers the prompt better?"
        page.keyboard.press("ArrowLeft")
        wait_for_query(page, q2)
        page.keyboard.press("ArrowRight")
        page.wait_for_function("document.body.dataset.busy === '0' && document.body.dataset.query === ''")
    with PreferenceStore(run_dir / "preferences.sqlite") as store:
        assert [(c.prompt, c.label) for c in store.text_comparisons()] == [
            ("review of the soup :", 1.0),
            ("review of the cake :", 0.0),
        ]


def test_people_rate_single_clips_with_the_number_keys_and_buttons(tmp_path):
    from .conftest import make_rating_run, ratings

    run = make_rating_run(tmp_path / "run", num_queries=3, length=30, num_classes=5)
    q1, q2, q3 = run["queries"]
    with open_page(run["store"], run["tokens"]["alice"], 800, 600) as page:
        wait_for_query(page, q1)
        page.wait_for_function(  # the one clip plays
            "(v => v.currentTime > 0.1 && !v.paused && v.videoWidth > 0)(document.getElementById('single'))",
            timeout=60_000,
        )
        assert page.inner_text("#description").startswith("Rate this clip on its own, 1 (worst) to 5")
        assert not page.is_visible("#buttons") and not page.is_visible("#clips")  # no comparison parts
        assert page.locator("#rating-buttons button").count() == 6  # 1..5 and can't tell
        for selector in ("#rating-buttons", "#undo"):  # above the fold at 800 x 600
            box = page.locator(selector).bounding_box()
            assert box is not None and box["y"] + box["height"] <= 600, (selector, box)
        page.keyboard.press("5")
        wait_for_query(page, q2)
        assert f"saved: query {q1} → rated 5 of 5" in page.inner_text("#status")
        page.keyboard.press("u")  # undo: q1 comes back
        wait_for_query(page, q1)
        page.click("#rating-buttons button >> nth=1")  # "2"
        wait_for_query(page, q2)
        page.keyboard.press("1")
        wait_for_query(page, q3)
        page.keyboard.press("ArrowDown")  # can't tell
        page.wait_for_function("document.body.dataset.busy === '0' && document.body.dataset.query === ''")
        assert not page.is_visible("#rating") and "waiting for new clips" in page.inner_text("#message")
    assert ratings(run["store"]) == [(q1, 1, "alice"), (q2, 0, "alice"), (q3, None, "alice")]


def test_people_rank_four_answers_with_the_number_keys(tmp_path):
    from prefrl.preferences.queue import LabelQueue
    from prefrl.preferences.store import PreferenceStore

    run_dir = tmp_path / "ranks"
    run_dir.mkdir()
    (run_dir / "config.json").write_text('{"kind": "lm-pairs", "config": {}}\n')
    answers = ["a fine soup .", "<i>the</i> best soup .", "soup .", "the soup was cold ."]
    with PreferenceStore(run_dir / "preferences.sqlite") as store:
        q1 = store.add_text_ranking("review of the soup :", answers)
        q2 = store.add_text_ranking("review of the cake :", ["cake .", "good cake .", "bad cake ."])
        token = LabelQueue(store).add_labeller("alice")
    with open_page(run_dir / "preferences.sqlite", token, 800, 600) as page:
        wait_for_query(page, q1)
        assert page.inner_text("#description") == "Rank the responses to the prompt from best to worst."
        assert page.inner_text("#rank-prompt") == "review of the soup :"
        cards = page.locator("#rank-list .card")
        assert cards.count() == 4 and "<i>the</i> best soup ." in cards.nth(1).inner_text()  # text, not HTML
        assert not page.is_visible("#buttons") and not page.is_visible("#clips")
        box = cards.nth(3).bounding_box()  # the last answer is above the fold at 800 x 600
        assert box is not None and box["y"] + box["height"] <= 600, box
        page.keyboard.press("2")
        page.keyboard.press("4")
        assert "#2" in cards.nth(3).inner_text()
        page.keyboard.press("r")  # start over
        assert "#" not in cards.nth(1).inner_text()
        for key in ("2", "1", "4"):  # the fourth pick is implied: the answer goes at the third
            page.keyboard.press(key)
        wait_for_query(page, q2)
        assert f"saved: query {q1} → ranked 2 > 1 > 4 > 3" in page.inner_text("#status")
        page.locator("#rank-list .card").nth(2).click()  # clicks rank too
        page.locator("#rank-list .card").nth(0).click()
        page.wait_for_function("document.body.dataset.busy === '0' && document.body.dataset.query === ''")
    with PreferenceStore(run_dir / "preferences.sqlite") as store:
        assert [r.responses for r in store.text_rankings()] == [
            [answers[1], answers[0], answers[3], answers[2]],
            ["bad cake .", "cake .", "good cake ."],
        ]


def test_people_rate_a_single_answer_to_a_prompt(tmp_path):
    from prefrl.preferences.queue import LabelQueue
    from prefrl.preferences.store import PreferenceStore

    run_dir = tmp_path / "rated"
    run_dir.mkdir()
    (run_dir / "config.json").write_text('{"kind": "lm-pairs", "config": {}}\n')
    with PreferenceStore(run_dir / "preferences.sqlite") as store:
        q = store.add_text_rating("review of the soup :", "<b>great</b> soup .", num_classes=4)
        token = LabelQueue(store).add_labeller("alice")
    with open_page(run_dir / "preferences.sqlite", token, 800, 600) as page:
        wait_for_query(page, q)
        assert page.inner_text("#description").startswith(
            "How good is this response to the prompt? 1 (worst) to 4"
        )
        assert page.inner_text("#rate-response") == "<b>great</b> soup ."  # text, never HTML
        assert page.is_visible("#rate-prompt") and not page.is_visible("#single")  # no empty video box
        assert page.locator("#rating-buttons button").count() == 5
        page.keyboard.press("5")  # off the 4-point scale: ignored
        page.keyboard.press("3")
        page.wait_for_function("document.body.dataset.busy === '0' && document.body.dataset.query === ''")
    with PreferenceStore(run_dir / "preferences.sqlite") as store:
        assert [(r.response, r.rating) for r in store.text_ratings()] == [("<b>great</b> soup .", 2)]
