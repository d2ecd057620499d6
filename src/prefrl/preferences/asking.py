"""Steps 3 and 4 of the loop, for comparisons and ratings alike: choose what to ask from the pool of
recent segments, store the queries, and have a labeller that answers at once answer them. A query is
a pair of segments (which is better?) or one segment (how good is it?)."""

from __future__ import annotations

from prefrl.datatypes import Segment
from prefrl.preferences.labellers import Labeller
from prefrl.preferences.pool import SegmentPool
from prefrl.preferences.query_selection import QuerySelector
from prefrl.preferences.store import PreferenceStore

Query = tuple[int, tuple[Segment, ...]]
"""A stored query: its id and its segments (two to compare, or one to rate)."""


def select_queries(
    selector: QuerySelector, pool: SegmentPool, num_pairs: int, num_single: int
) -> list[tuple[Segment, ...]]:
    """``num_pairs`` pairs of pool segments to compare, then ``num_single`` segments to rate."""
    stacked = pool.stacked()
    chosen = [] if num_pairs <= 0 else [tuple(p) for p in selector.select(*stacked, num_pairs)]
    if num_single > 0:
        chosen += [(int(i),) for i in selector.select_single(*stacked, num_single)]
    return [tuple(pool.segments[i] for i in query) for query in chosen]


def store_queries(
    store: PreferenceStore,
    queries: list[tuple[Segment, ...]],
    iteration: int,
    redundancy: int,
    rating_classes: int,
) -> list[Query]:
    """Store the segments and their queries (a pair: compare; one segment: rate on a scale of
    ``rating_classes``), each wanting ``redundancy`` answers."""
    pairs = [q for q in queries if len(q) == 2]
    singles = [q for q in queries if len(q) == 1]
    ordered = pairs + singles
    ids = store.add_segments([s for q in ordered for s in q], iteration)
    pair_ids = ids[: 2 * len(pairs)]
    asked = store.add_queries(zip(pair_ids[0::2], pair_ids[1::2], strict=True), redundancy)
    if singles:
        asked += store.add_rating_queries(ids[2 * len(pairs) :], rating_classes, redundancy)
    return list(zip(asked, ordered, strict=True))


def answer_now(store: PreferenceStore, labeller: Labeller, queries: list[Query], rating_classes: int) -> None:
    """A labeller that answers at once labels the pairs and rates the single segments; the answers
    go into the store (a labeller without ``rate`` must not be asked for ratings)."""
    pairs = [(q, pair) for q, pair in queries if len(pair) == 2]
    labels = labeller.label([pair for _, pair in pairs])
    for (query, _), label in zip(pairs, labels, strict=True):
        store.answer(query, label, labeller.name)
    singles = [(q, one[0]) for q, one in queries if len(one) == 1]
    if singles:
        ratings = labeller.rate([s for _, s in singles], rating_classes)  # type: ignore[attr-defined]
        for (query, _), rating in zip(singles, ratings, strict=True):
            store.rate(query, rating, labeller.name)
