"""Label in the real page, in Chromium, as a stand-in for a person: wait until the clips play, then
press the arrow key for the clip whose segment has the higher true return (read from the store), or,
for a rating query (`--feedback rate`), the number key of the clip's true return on the scale of the
returns rated so far (the synthetic rater's). How the labelling app was checked end to end against a
live `prefrl rlhp --labeller human` run.

    prefrl rlhp --env-id Hopper-v5 --labeller human --human.port 0 --run-dir runs/hopper-human &
    python examples/scripted_person.py URL runs/hopper-human --num-answers 20 --screenshot shot.png

Needs the dev extra (playwright) and Debian's chromium (apt-get install chromium).
"""

import argparse
import time
from pathlib import Path

import numpy as np
from playwright.sync_api import Page, sync_playwright

from prefrl.preferences.labellers import SyntheticLabeller, SyntheticLabellerConfig
from prefrl.preferences.store import PreferenceStore

PLAYING = (
    "document.body.dataset.busy === '0' && document.body.dataset.query !== '' && "
    "[...document.querySelectorAll('video')].filter(v => v.checkVisibility())"
    ".every(v => v.currentTime > 0.2 && !v.paused)"
)


def answer_key(store: PreferenceStore, query_id: int, rater: SyntheticLabeller) -> str:
    row = store.db.execute("SELECT segment_1, segment_2 FROM queries WHERE id = ?", (query_id,)).fetchone()
    left, right = store.segments([row[0], row[1]])
    if store.query_kind(query_id) == "rate":
        (rating,) = rater.rate([left], store.rating_classes() or 5)
        return str((rating or 0) + 1)
    return "ArrowLeft" if left.true_return > right.true_return else "ArrowRight"


def label(page: Page, store: PreferenceStore, num_answers: int, screenshot: Path | None) -> None:
    rater = SyntheticLabeller(SyntheticLabellerConfig(), np.random.default_rng(0))
    for number in range(num_answers):
        page.wait_for_function(PLAYING, timeout=600_000, polling=200)
        if screenshot is not None and number == 1:
            page.screenshot(path=str(screenshot))
        query = page.evaluate("document.body.dataset.query")
        page.keyboard.press(answer_key(store, int(query), rater))
        page.wait_for_function(f"document.body.dataset.query !== '{query}'", timeout=600_000)
        print(
            f"{time.strftime('%H:%M:%S')} answered query {query}: {page.inner_text('#progress')}", flush=True
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a labeller's personal URL (printed by prefrl rlhp / prefrl label)")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--num-answers", type=int, default=20)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()
    store = PreferenceStore(args.run_dir / "preferences.sqlite")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1180, "height": 680})
        page.goto(args.url)
        label(page, store, args.num_answers, args.screenshot)
        browser.close()


if __name__ == "__main__":
    main()
