"""People answering queries of a preference store: labellers with tokens, leases, answers, undo,
progress and agreement. Every change is one ``BEGIN IMMEDIATE`` transaction, so several server
threads or processes on one SQLite file (WAL) can never double-answer or lose an answer.

- A pending query is leased to one labeller at a time (``lease_seconds``); an expired lease returns
  it to the pool, and a restarted server finds the leases in the store.
- A query asks for ``redundancy`` answers (one per labeller); it leaves the pool once it has them.
- Undo deletes the labeller's latest answer and leases its query back to them. Nothing else depends
  on an answer: the trainer refits the reward model from the store's current answers whenever they
  change (:meth:`PreferenceStore.answers_signature`), so an undone answer drops out of the next fit.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from prefrl.preferences.store import PreferenceStore

CHOICES: dict[str, float | None] = {"left": 1.0, "right": 0.0, "equal": 0.5, "cant_tell": None}
"""What a person answers -> label (P[left/first segment preferred]; None: can't tell, not trained on)."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class QueueError(ValueError):
    """A request the queue refuses (nothing was written); ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LabellerAccount:
    id: int
    name: str
    is_admin: bool


@dataclass(frozen=True)
class Lease:
    """A query leased to a labeller until ``expires`` (a UNIX time)."""

    query_id: int
    segment_1: int
    segment_2: int
    expires: float


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LabelQueue:
    """The labelling side of ``store``: who may answer, what each labeller is asked, their answers."""

    def __init__(self, store: PreferenceStore, lease_seconds: float = 300.0) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        self.store = store
        self.db = store.db
        self.lease_seconds = lease_seconds

    # labellers
    def add_labeller(self, name: str, admin: bool = False, expires_days: float | None = None) -> str:
        """Register ``name`` and return its new secret token (only its hash is stored), valid for
        ``expires_days`` (None: until replaced). A known name gets a new token (the old one stops
        working); admin rights are kept (revoke them with :meth:`set_admin`)."""
        if not NAME_PATTERN.match(name):
            raise ValueError(f"labeller name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
        if expires_days is not None and expires_days <= 0:
            raise ValueError(f"expires_days must be > 0, got {expires_days}: fix --expires-days")
        token, now = secrets.token_urlsafe(18), time.time()
        expires = None if expires_days is None else now + expires_days * 86400
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO labellers (name, token_hash, is_admin, created, token_expires) VALUES "
                "(?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET token_hash = excluded.token_hash, "
                "is_admin = MAX(is_admin, excluded.is_admin), token_expires = excluded.token_expires",
                (name, hash_token(token), int(admin), now, expires),
            )
        return token

    def remove_labeller(self, name: str) -> None:
        """Remove ``name``: their token stops working and the queries they hold return to the pool;
        their answers stay (they are data)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if self.db.execute("DELETE FROM labellers WHERE name = ?", (name,)).rowcount == 0:
                raise ValueError(f"no labeller {name!r}: the store's labellers are {self._names()}")
            self.db.execute(
                "UPDATE queries SET leased_to = NULL, lease_expires = NULL WHERE leased_to = ?", (name,)
            )

    def set_admin(self, name: str, admin: bool) -> None:
        """Give ``name`` admin rights, or take them away."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            sql = "UPDATE labellers SET is_admin = ? WHERE name = ?"
            if self.db.execute(sql, (int(admin), name)).rowcount == 0:
                raise ValueError(f"no labeller {name!r}: the store's labellers are {self._names()}")

    def _names(self) -> str:
        return ", ".join(a.name for a in self.labellers()) or "none"

    def labeller_for_token(self, token: str | None) -> LabellerAccount | None:
        """The labeller whose token this is, unless it expired."""
        if not token:
            return None
        row = self.db.execute(
            "SELECT id, name, is_admin FROM labellers WHERE token_hash = ? AND "
            "(token_expires IS NULL OR token_expires > ?)",
            (hash_token(token), time.time()),
        ).fetchone()
        return None if row is None else LabellerAccount(int(row[0]), row[1], bool(row[2]))

    def labellers(self) -> list[LabellerAccount]:
        rows = self.db.execute("SELECT id, name, is_admin FROM labellers ORDER BY id")
        return [LabellerAccount(int(i), name, bool(admin)) for i, name, admin in rows]

    # leases and answers
    def lease(self, labeller: LabellerAccount) -> Lease | None:
        """The query this labeller should answer now: the one they hold (lease renewed), else the
        oldest pending query that is free (never leased, or its lease expired) and that they have not
        answered. None when there is none."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            not_mine = "NOT EXISTS (SELECT 1 FROM comparisons c WHERE c.query_id = q.id AND c.labeller = ?)"
            row = self.db.execute(
                f"SELECT id, segment_1, segment_2 FROM queries q WHERE status = 'pending' AND leased_to = ? "
                f"AND {not_mine} ORDER BY id LIMIT 1",
                (labeller.name, labeller.name),
            ).fetchone()
            if row is None:
                row = self.db.execute(
                    "SELECT id, segment_1, segment_2 FROM queries q WHERE status = 'pending' AND "
                    f"(leased_to IS NULL OR lease_expires < ?) AND {not_mine} ORDER BY id LIMIT 1",
                    (now, labeller.name),
                ).fetchone()
            if row is None:
                return None
            expires = now + self.lease_seconds
            self.db.execute(
                "UPDATE queries SET leased_to = ?, lease_expires = ? WHERE id = ?",
                (labeller.name, expires, row[0]),
            )
        return Lease(int(row[0]), int(row[1]), int(row[2]), expires)

    def answer(
        self,
        query_id: int,
        labeller: LabellerAccount,
        choice: str | None,
        rating: int | None = None,
        ranking: list[int] | None = None,
    ) -> int:
        """Record the labeller's answer to a query leased to them; committed before it returns: a
        ``choice`` (a key of CHOICES) for a comparison; a ``rating`` (0 .. n - 1) for a rating query;
        a ``ranking`` (the positions of its items, best first) for a ranking query; the choice
        "cant_tell" for any. QueueError (nothing written) for an answer that does not fit the query,
        an unknown query, a query leased to someone else or not leased, or a second answer."""
        if choice is not None and choice not in CHOICES:
            raise QueueError(400, f"unknown choice {choice[:40]!r}: send one of {', '.join(CHOICES)}")
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(
                "SELECT status, leased_to, lease_expires, kind FROM queries WHERE id = ?", (query_id,)
            ).fetchone()
            if row is None:
                raise QueueError(404, f"no query {query_id}: answer the query that /api/next gave you")
            label = self._label(query_id, row[3], choice, rating, ranking)
            mine = "SELECT 1 FROM comparisons WHERE query_id = ? AND labeller = ?"
            if self.db.execute(mine, (query_id, labeller.name)).fetchone():
                raise QueueError(409, f"you already answered query {query_id}: undo it to answer again")
            if row[0] != "pending":
                raise QueueError(409, f"query {query_id} is already answered: ask /api/next for another")
            if row[1] != labeller.name:
                held = row[1] is not None and row[2] >= time.time()
                whose = "leased to another labeller" if held else "not leased to you"
                raise QueueError(409, f"query {query_id} is {whose}: ask /api/next for yours")
            try:
                return self.store.record_answer(query_id, label, labeller.name, rating, ranking)
            except ValueError as exc:  # a rating off the scale, a ranking that is no permutation
                raise QueueError(422, str(exc)) from None

    @staticmethod
    def _label(
        query_id: int, kind: str, choice: str | None, rating: int | None, ranking: list[int] | None
    ) -> float | None:
        """The label of a comparison's choice; None for a rating or ranking query (after checking
        that the answer fits the query)."""
        if kind == "rank":
            if (
                rating is not None
                or choice not in (None, "cant_tell")
                or (ranking is None) == (choice is None)
            ):
                wanted = '{"ranking": [positions, best first]} or the choice cant_tell'
                raise QueueError(422, f"query {query_id} asks for a ranking: send {wanted}")
            return None
        if ranking is not None:
            raise QueueError(422, f"query {query_id} is no ranking query: send a choice or a rating")
        if kind == "rate":
            if choice not in (None, "cant_tell") or (rating is None) == (choice is None):
                raise QueueError(
                    422, f'query {query_id} asks for a rating: send {{"rating": int}} or the choice cant_tell'
                )
            return None
        if choice is None or rating is not None:
            raise QueueError(
                422, f"query {query_id} compares two clips: send a choice ({', '.join(CHOICES)})"
            )
        return CHOICES[choice]

    def undo(self, labeller: LabellerAccount, query_id: int | None = None) -> int:
        """Delete the labeller's latest answer and lease its query back to them; returns the query
        id. ``query_id``: only if the latest answer is to that query (a page undoes what it saved,
        never an earlier answer). QueueError 409 when there is nothing (of that query) to undo."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(
                "SELECT id, query_id FROM comparisons WHERE labeller = ? AND query_id IS NOT NULL "
                "ORDER BY id DESC LIMIT 1",
                (labeller.name,),
            ).fetchone()
            if row is None:
                raise QueueError(409, "nothing to undo: you have no answers")
            if query_id is not None and int(row[1]) != query_id:
                raise QueueError(
                    409, f"your last answer is to query {row[1]}, not {query_id}: nothing undone"
                )
            self.db.execute("DELETE FROM comparisons WHERE id = ?", (row[0],))
            now = time.time()
            self.db.execute(  # unless another labeller holds it now (k answers per query)
                "UPDATE queries SET status = 'pending', leased_to = ?, lease_expires = ? WHERE id = ? "
                "AND (leased_to IS NULL OR leased_to = ? OR lease_expires < ?)",
                (labeller.name, now + self.lease_seconds, row[1], labeller.name, now),
            )
            self.db.execute("UPDATE queries SET status = 'pending' WHERE id = ?", (row[1],))
        return int(row[1])

    # progress and agreement
    def set_budget(self, num_labels: int) -> None:
        """Record the run's label budget (shown in the progress line)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO meta VALUES ('label_budget', ?) ON CONFLICT(key) DO UPDATE SET value = "
                "excluded.value",
                (str(int(num_labels)),),
            )

    def progress(self, labeller: LabellerAccount | None = None) -> dict[str, Any]:
        """{"answered": all answers, "budget": the run's label budget or None, "pending": queries
        waiting for answers, "yours": this labeller's answers}."""
        budget = self.db.execute("SELECT value FROM meta WHERE key = 'label_budget'").fetchone()
        yours = None
        if labeller is not None:
            sql = "SELECT COUNT(*) FROM comparisons WHERE labeller = ?"
            yours = int(self.db.execute(sql, (labeller.name,)).fetchone()[0])
        return {
            "answered": self.store.num_comparisons(),
            "budget": None if budget is None else int(budget[0]),
            "pending": self.store.num_pending(),
            "yours": yours,
        }

    def agreement(self) -> dict[str, Any]:
        """Per labeller: answers, can't-tells, and agreement with others on the queries they share (the
        same label, or the same rating);
        per query with several answers: the labels and whether all agree (None where undefined)."""
        rows = self.db.execute(
            "SELECT query_id, labeller, COALESCE(rating, label, ranking) FROM comparisons "
            "WHERE query_id IS NOT NULL ORDER BY query_id"
        ).fetchall()
        by_query: dict[int, list[tuple[str, float | None]]] = {}
        for query, name, label in rows:
            by_query.setdefault(int(query), []).append((name, label))
        people: dict[str, dict[str, Any]] = {}
        for name, label in ((n, lab) for answers in by_query.values() for n, lab in answers):
            entry = people.setdefault(name, {"answers": 0, "cant_tell": 0, "shared": 0, "agreed": 0})
            entry["answers"] += 1
            entry["cant_tell"] += label is None
        multi = {q: a for q, a in by_query.items() if len(a) > 1}
        for answers in multi.values():
            for (n1, l1), (_, l2) in itertools.permutations(answers, 2):
                people[n1]["shared"] += 1
                people[n1]["agreed"] += l1 == l2
        for entry in people.values():
            entry["agreement"] = entry["agreed"] / entry["shared"] if entry["shared"] else None
        queries = [
            {"query_id": q, "answers": dict(a), "unanimous": len({lab for _, lab in a}) == 1}
            for q, a in multi.items()
        ]
        unanimous = sum(bool(q["unanimous"]) for q in queries)
        return {
            "labellers": people,
            "queries": queries,
            "unanimous_fraction": unanimous / len(queries) if queries else None,
        }
