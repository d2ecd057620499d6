"""Ratings of single segments: the store's rating queries and answers, the queue's checks, the
synthetic rater."""

import re

import numpy as np
import pytest

from prefrl.datatypes import Segment
from prefrl.preferences.labellers import SyntheticLabeller, SyntheticLabellerConfig, synthetic_ratings
from prefrl.preferences.queue import LabelQueue, QueueError
from prefrl.preferences.store import PreferenceStore

from .test_store import seg


def test_rating_queries_and_answers_are_kept_apart_from_comparisons(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    a, b, c = store.add_segments([seg(1), seg(2), seg(3)])
    (compare,) = store.add_queries([(a, b)])
    rate = store.add_rating_queries([b, c], num_classes=4)
    assert store.rating_classes() == 4 and [store.query_kind(q) for q in (compare, *rate)] == [
        "compare", "rate", "rate"
    ]  # fmt: skip
    assert store.pending_queries()[1] == (rate[0], b, b)  # a rating query names its one segment twice
    store.answer(compare, 1.0, "alice")
    store.rate(rate[0], 3, "alice")
    store.rate(rate[1], None, "alice")  # can't tell: recorded, not trained on
    assert [(r.segment, r.rating) for r in store.ratings()] == [(b, 3)]
    assert [r.rating for r in store.ratings(trainable_only=False)] == [3, None]
    assert [x.label for x in store.comparisons()] == [1.0]  # the ratings are no comparisons
    assert store.answers_signature()[0] == 2 and store.num_comparisons() == 3 and store.num_pending() == 0


def test_bad_ratings_are_refused_and_nothing_is_written(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    a, b = store.add_segments([seg(1), seg(2)])
    (compare,) = store.add_queries([(a, b)])
    (rate,) = store.add_rating_queries([a], num_classes=5)
    for rating in (5, -1, 2.0, True):
        with pytest.raises(ValueError, match=r"rating must be an integer from 0 \(worst\) to 4"):
            store.rate(rate, rating, "alice")
    with pytest.raises(ValueError, match="asks for a rating"):
        store.answer(rate, 1.0, "alice")
    with pytest.raises(ValueError, match="answer it with a label"):
        store.rate(compare, 2, "alice")
    with pytest.raises(ValueError, match="scale of 5 points, not 3"):
        store.add_rating_queries([b], num_classes=3)
    assert store.num_comparisons() == 0 and store.num_queries() == 2


def test_the_queue_takes_a_rating_or_cant_tell_for_a_rating_query(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    a, b = store.add_segments([seg(1), seg(2)])
    store.add_rating_queries([a, b], num_classes=3, redundancy=2)
    queue = LabelQueue(store)
    queue.add_labeller("alice"), queue.add_labeller("bob")
    alice, bob = queue.labellers()
    lease = queue.lease(alice)
    bad = [("left", None, "asks for a rating"), (None, None, "asks for a rating"),
           ("cant_tell", 1, "asks for a rating"), (None, 3, "from 0 (worst) to 2")]  # fmt: skip
    for choice, rating, message in bad:
        with pytest.raises(QueueError, match=re.escape(message)) as error:
            queue.answer(lease.query_id, alice, choice, rating)
        assert error.value.status == 422
    queue.answer(lease.query_id, alice, None, 2)
    queue.answer(queue.lease(alice).query_id, alice, "cant_tell")
    queue.answer(queue.lease(bob).query_id, bob, None, 2)
    assert queue.agreement()["labellers"]["bob"]["agreement"] == 1.0  # the same rating as alice
    assert queue.undo(bob) == lease.query_id and [r.rating for r in store.ratings()] == [2]


def test_synthetic_ratings_cut_the_range_into_equal_classes():
    assert synthetic_ratings(np.array([-1.0, 0.0, 0.24, 0.25, 0.99, 1.0, 7.0]), 0.0, 1.0, 4).tolist() == [
        0, 0, 0, 1, 3, 3, 3
    ]  # fmt: skip


def segments(returns):
    return [
        Segment(np.zeros((2, 1), np.float32), np.zeros(2), np.array([r, 0.0], np.float32)) for r in returns
    ]


def test_the_synthetic_rater_widens_its_scale_as_better_segments_appear():
    rater = SyntheticLabeller(SyntheticLabellerConfig(), np.random.default_rng(0))
    assert rater.rate(segments([0.0, 5.0, 10.0]), 5) == [0, 2, 4]
    assert rater.rate(segments([10.0, 20.0]), 5) == [2, 4]  # 20 is the new best: 10 is middling now
    state = rater.state_dict()
    resumed = SyntheticLabeller(SyntheticLabellerConfig(), np.random.default_rng(0))
    resumed.load_state_dict(state)
    assert resumed.rate(segments([10.0]), 5) == [2]
    fixed = SyntheticLabeller(SyntheticLabellerConfig(rating_range=(0.0, 100.0)), np.random.default_rng(0))
    assert fixed.rate(segments([10.0, 20.0, 150.0]), 5) == [0, 1, 4]
    noisy = SyntheticLabeller(SyntheticLabellerConfig(error_rate=0.5), np.random.default_rng(0))
    ratings = noisy.rate(segments(np.linspace(0, 1, 1000)), 5)
    exact = synthetic_ratings(np.linspace(0, 1, 1000), 0.0, 1.0, 5)
    assert 0.3 < np.mean(np.array(ratings) != exact) < 0.5  # half replaced at random, 1/5 of those by chance


def test_rankings_of_texts_are_permutations_and_come_back_best_first(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    q = store.add_text_ranking("prompt", ["a", "b", "c", "d"], redundancy=2)
    assert store.query_kind(q) == "rank" and store.text_ranking(q) == ("prompt", ["a", "b", "c", "d"])
    for bad in ([0, 1, 2], [0, 1, 2, 2], [0, 1, 2, 4], [0, 1, 2, 3.0], [True, 0, 2, 3]):
        with pytest.raises(ValueError, match="lists each of its 4 items once"):
            store.rank(q, bad, "alice")
    with pytest.raises(ValueError, match="asks for a ranking"):
        store.answer(q, 1.0, "alice")
    with pytest.raises(ValueError, match="3 to 9 responses"):
        store.add_text_ranking("prompt", ["a", "b"])
    assert store.num_comparisons() == 0
    store.rank(q, [2, 0, 3, 1], "alice")
    store.rank(q, None, "bob")  # can't tell: recorded, not trained on
    assert [(r.responses, r.labeller) for r in store.text_rankings()] == [(["c", "a", "d", "b"], "alice")]
    assert store.answers_signature()[0] == 1 and store.text_comparisons() == [] and store.num_pending() == 0
    (pair,) = [store.add_text_pair("p", "x", "y")]
    with pytest.raises(ValueError, match="no ranking query"):
        store.rank(pair, [0, 1], "alice")
