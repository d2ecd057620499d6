"""Language-model answers in the preference store: pairs of responses to a prompt that people
compare, K responses they rank (InstructGPT's K-way rankings), and single responses they rate.
Each response is a segment that holds only its text; the labelling app shows the prompt and the
responses as text, never HTML."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prefrl.datatypes import Segment

MAX_RANKED = 9
"""Most responses a ranking query shows (InstructGPT's K = 4..9)."""


@dataclass(frozen=True)
class TextComparison:
    """One answer about two responses to a prompt: label = P[response_1 preferred] (None: can't tell)."""

    prompt: str
    response_1: str
    response_2: str
    label: float | None
    labeller: str


@dataclass(frozen=True)
class TextRating:
    """One rating of a response to a prompt: 0 (worst) .. n - 1 (best)."""

    prompt: str
    response: str
    rating: int
    labeller: str


@dataclass(frozen=True)
class TextRanking:
    """One answer to a ranking query: the prompt's K responses, best first."""

    prompt: str
    responses: list[str]
    labeller: str


def _text_segments(count: int) -> list[Segment]:
    """Segments with no steps: a response is only its text."""
    empty = Segment(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))
    return [empty] * count


class TextQueries:
    """The text side of :class:`~prefrl.preferences.store.PreferenceStore` (mixed into it)."""

    db: sqlite3.Connection
    path: Path

    if TYPE_CHECKING:

        def add_segments(
            self, segments: Sequence[Segment], iteration: int = 0, texts: Sequence[str] | None = None
        ) -> list[int]: ...

        def add_queries(
            self, pairs: Iterable[tuple[int, int]], redundancy: int = 1, prompt: str | None = None
        ) -> list[int]: ...

        def add_ranking_query(
            self, segment_ids: Sequence[int], redundancy: int = 1, prompt: str | None = None
        ) -> int: ...

        def query_items(self, query_id: int) -> list[int]: ...

        def add_rating_queries(
            self, segment_ids: Iterable[int], num_classes: int, redundancy: int = 1, prompt: str | None = None
        ) -> list[int]: ...

    def add_text_pair(self, prompt: str, response_1: str, response_2: str, redundancy: int = 1) -> int:
        """Ask "which response to ``prompt`` is better?" (language models); returns the query id.
        The labelling app shows the prompt and both responses; answers come back through
        :meth:`text_comparisons` (label 1: response 1 better)."""
        a, b = self.add_segments(_text_segments(2), texts=[response_1, response_2])
        return self.add_queries([(a, b)], redundancy, prompt=prompt)[0]

    def add_text_ranking(self, prompt: str, responses: Sequence[str], redundancy: int = 1) -> int:
        """Ask people to order ``responses`` to ``prompt`` from best to worst (3 to MAX_RANKED of
        them); returns the query id. Answers come back through :meth:`text_rankings`."""
        if not 3 <= len(responses) <= MAX_RANKED:
            raise ValueError(
                f"a ranking shows 3 to {MAX_RANKED} responses, got {len(responses)}: ask about two with "
                "add_text_pair"
            )
        ids = self.add_segments(_text_segments(len(responses)), texts=list(responses))
        return self.add_ranking_query(ids, redundancy, prompt=prompt)

    def add_text_rating(self, prompt: str, response: str, num_classes: int, redundancy: int = 1) -> int:
        """Ask "how good is this response to ``prompt``?" on a scale of ``num_classes`` points;
        returns the query id. Answers come back through :meth:`text_ratings`."""
        (segment,) = self.add_segments(_text_segments(1), texts=[response])
        return self.add_rating_queries([segment], num_classes, redundancy, prompt=prompt)[0]

    def text_pair(self, query_id: int) -> tuple[str, str, str] | None:
        """(prompt, response 1, response 2) of a text query; None for a query of clips."""
        row = self.db.execute(
            "SELECT q.prompt, s1.text, s2.text FROM queries q JOIN segments s1 ON s1.id = q.segment_1 "
            "JOIN segments s2 ON s2.id = q.segment_2 WHERE q.id = ?",
            (query_id,),
        ).fetchone()
        if row is None:
            raise ValueError(f"no query {query_id} in {self.path}")
        return None if row[1] is None else (row[0] or "", row[1], row[2] or "")

    def text_ranking(self, query_id: int) -> tuple[str, list[str]]:
        """(prompt, the K responses in the order shown) of a ranking query of texts."""
        prompt = self.db.execute("SELECT prompt FROM queries WHERE id = ?", (query_id,)).fetchone()
        texts = dict(self.db.execute(
            "SELECT i.position, s.text FROM query_items i JOIN segments s ON s.id = i.segment "
            "WHERE i.query_id = ?", (query_id,),
        ).fetchall())  # fmt: skip
        if prompt is None or not texts:
            raise ValueError(f"no ranking query {query_id} in {self.path}")
        return prompt[0] or "", [texts[k] or "" for k in sorted(texts)]

    def text_comparisons(self, trainable_only: bool = True) -> list[TextComparison]:
        """Every answer to a text pair, oldest first (by default without "can't tell")."""
        sql = (
            "SELECT q.prompt, s1.text, s2.text, c.label, c.labeller FROM comparisons c "
            "JOIN queries q ON q.id = c.query_id JOIN segments s1 ON s1.id = c.segment_1 "
            "JOIN segments s2 ON s2.id = c.segment_2 WHERE s1.text IS NOT NULL AND q.kind = 'compare'"
        )
        sql += " AND c.label IS NOT NULL" if trainable_only else ""
        return [TextComparison(*row) for row in self.db.execute(sql + " ORDER BY c.id")]

    def text_ratings(self) -> list[TextRating]:
        """Every rating of a response to a prompt, oldest first ("can't tell" left out)."""
        rows = self.db.execute(
            "SELECT q.prompt, s.text, c.rating, c.labeller FROM comparisons c "
            "JOIN queries q ON q.id = c.query_id JOIN segments s ON s.id = c.segment_1 "
            "WHERE q.kind = 'rate' AND s.text IS NOT NULL "
            "AND c.rating IS NOT NULL ORDER BY c.id"
        )
        return [
            TextRating(prompt or "", text, int(rating), labeller) for prompt, text, rating, labeller in rows
        ]

    def text_rankings(self) -> list[TextRanking]:
        """Every ranking people gave to a query of texts, oldest first ("can't tell" left out)."""
        rows = self.db.execute(
            "SELECT c.query_id, c.ranking, c.labeller FROM comparisons c JOIN queries q ON q.id = c.query_id "
            "WHERE q.kind = 'rank' AND c.ranking IS NOT NULL ORDER BY c.id"
        ).fetchall()
        rankings = []
        for query_id, ranking, labeller in rows:
            prompt, responses = self.text_ranking(int(query_id))
            rankings.append(TextRanking(prompt, [responses[k] for k in json.loads(ranking)], labeller))
        return rankings
