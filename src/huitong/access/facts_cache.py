"""A clinician's access facts kept between requests, and never used past a change.

A clinician's restriction (:mod:`huitong.access.sql`) rests on facts that do not depend on
the row: the patients registered or seen at the organization, the open referrals, the
consents naming it, the patients with sensitive data. On PostgreSQL they are read in one
statement; reading it at every request cost more than the search it restricts (issue 5:
"a consent-enforced clinician search costs at most 20% more"). :class:`FactsCache` keeps
them per (organization, practitioner), and each request checks, inside the one statement
that authenticates it (:mod:`huitong.access.request_context`), whether anything they rest
on has committed since they were read:

- every write that can change them leaves a row in ``access_changes`` (PostgreSQL triggers
  of migration 0013 — whichever process or tool wrote it), naming its *scope* and the
  writing transaction's id;
- the facts are read together with ``pg_current_snapshot()``; the check asks for a row of
  one of the group's scopes written by a transaction that snapshot did not see but which
  has committed now (``pg_visible_in_snapshot``). Rows are only inserted, so writers never
  wait on each other; the check is an index range scan per scope;
- what time alone changes (a consent's or a referral's period starting or ending) is read
  with the facts as the next such instant; the facts are not used from then on;
- a request uses kept facts only if its own authentication checked them, or if they were
  read after that authentication began — so a revocation committed before a request starts
  is seen by that request, whichever process wrote it;
- facts are kept at most :data:`TTL_SECONDS`; :class:`ChangePruner` deletes change rows
  only once every snapshot still kept has seen them.

SQLite compiles the restriction into each statement and keeps nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from huitong.store.repository import Repository

__all__ = [
    "TTL_SECONDS",
    "ChangePruner",
    "FactsCache",
    "FactsTicket",
    "change_check_sql",
    "prune_changes",
]

log = logging.getLogger("huitong.access")

# Kept facts are read again after this long whatever happens, and change rows are pruned
# only when older than every kept snapshot (ChangePruner runs far less often than this).
TTL_SECONDS = 300.0
_MAX_GROUPS = 1024
GroupKey = tuple[str | None, str | None]  # (organization id, practitioner id)


@dataclass(slots=True)
class _Entry:
    values: list[Any]
    valid_until: int | None  # injected-clock µs: a period starts or ends then


@dataclass(slots=True)
class _Group:
    """The facts of one (organization, practitioner): read no earlier than ``snapshot``."""

    snapshot: str  # pg_snapshot text of the first (oldest) facts statement of the group
    taken: float  # monotonic time before that statement was sent
    read: float  # ... and after its answer came
    scopes: set[str]
    entries: dict[Hashable, _Entry] = field(default_factory=dict)

    def expired(self) -> bool:
        return time.monotonic() - self.taken > TTL_SECONDS


class FactsCache:
    """The kept facts of one server process (one per :class:`~huitong.access.AuthService`,
    so one per database). Thread-safe."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, _Group] = {}
        self._lock = threading.Lock()

    def to_check(self, key: GroupKey) -> tuple[_Group, str, list[str]] | None:
        """The group of ``key`` and what the authentication statement must check for it
        (its snapshot and scopes), or None when nothing usable is kept."""
        with self._lock:
            group = self._groups.get(key)
            if group is None or group.expired():
                return None
            return group, group.snapshot, sorted(group.scopes)

    def discard(self, key: GroupKey, group: _Group) -> None:
        """Forget ``group`` (a change was found), unless it was replaced already."""
        with self._lock:
            if self._groups.get(key) is group:
                del self._groups[key]

    def ticket(self, key: GroupKey, started: float, checked: _Group | None) -> FactsTicket:
        return FactsTicket(self, key, started, checked)

    def clear(self) -> None:
        with self._lock:
            self._groups.clear()

    # -- used through FactsTicket -------------------------------------------------------
    def _usable(self, group: _Group | None, ticket: FactsTicket) -> bool:
        return (
            group is not None
            and not group.expired()
            and (group is ticket.checked or group.taken >= ticket.started)
        )

    def _lookup(self, ticket: FactsTicket, key: Hashable, now: int) -> list[Any] | None:
        with self._lock:
            group = self._groups.get(ticket.key)
            if not self._usable(group, ticket):
                return None
            assert group is not None
            entry = group.entries.get(key)
        if entry is None or (entry.valid_until is not None and now >= entry.valid_until):
            return None
        return entry.values

    def _store(self, ticket: FactsTicket, key: Hashable, entry: _Entry, snapshot: str,
               scopes: Iterable[str], taken: float, read: float) -> None:  # fmt: skip
        with self._lock:
            group = self._groups.get(ticket.key)
            if self._usable(group, ticket) and group is not None and group.read <= taken:
                # these facts are at least as fresh as the group's snapshot: checking
                # changes since that older snapshot covers them too
                group.entries[key] = entry
                group.scopes.update(scopes)
                return
            if len(self._groups) >= _MAX_GROUPS:
                self._groups.pop(next(iter(self._groups)))  # the oldest group
            self._groups.pop(ticket.key, None)
            self._groups[ticket.key] = _Group(snapshot, taken, read, set(scopes), {key: entry})


@dataclass(frozen=True, slots=True)
class FactsTicket:
    """What one request may use of a :class:`FactsCache`: the group its authentication
    checked (``checked``), or facts read after it began (``started``, monotonic)."""

    cache: FactsCache
    key: GroupKey
    started: float
    checked: _Group | None = None

    def lookup(self, key: Hashable, now: int) -> list[Any] | None:
        """The kept values of the facts statement ``key``, or None (read them)."""
        return self.cache._lookup(self, key, now)

    def store(self, key: Hashable, values: list[Any], *, snapshot: str, valid_until: int | None,
              scopes: Iterable[str], taken: float, read: float) -> None:  # fmt: skip
        """Keep facts this request read (``taken``/``read``: monotonic times around the
        statement; ``snapshot``: the ``pg_current_snapshot()`` it returned)."""
        self.cache._store(self, key, _Entry(values, valid_until), snapshot, scopes, taken, read)


def change_check_sql() -> str:
    """The condition (PostgreSQL) that a change of one of the scopes (parameter 1, a JSON
    array of texts) committed outside the snapshot (parameters 2 and 3, its text).

    The scopes travel as one JSON text, not a text array: the driver checks every element
    of a list parameter for quoting (~40 µs for a clinician's dozen scopes, at every
    request), and ``IN (SELECT …)`` makes the prepared generic plan one index range scan
    of ``(scope, xid)`` per scope, where ``= ANY(array)``, whose length a generic plan
    cannot know, was planned as a sequential scan of the table."""
    return (
        "EXISTS (SELECT 1 FROM access_changes ac WHERE ac.scope IN "
        "(SELECT json_array_elements_text(CAST(? AS json))) "
        "AND ac.xid >= pg_snapshot_xmin(CAST(? AS pg_snapshot)) "
        "AND NOT pg_visible_in_snapshot(ac.xid, CAST(? AS pg_snapshot)))"
    )


class ChangePruner:
    """Deletes ``access_changes`` rows every kept snapshot has seen. Each :meth:`run`
    deletes the rows of transactions older than the oldest one running at the *previous*
    run — at least ``interval`` ago, longer than any snapshot is kept — and remembers the
    present one. Nothing to do on SQLite."""

    def __init__(self, repo: Repository, interval: float = 900.0) -> None:
        if interval <= TTL_SECONDS:
            raise ValueError("the pruning interval must exceed the facts' lifetime")
        self.repo = repo
        self.interval = interval
        self._horizon: str | None = None
        self._last = 0.0

    def due(self) -> bool:
        return self._horizon is None or time.monotonic() - self._last >= self.interval

    def run(self) -> int:
        """Prune once; returns how many rows went."""
        if getattr(self.repo, "dialect", "") != "postgresql":
            return 0
        if not self.due():
            return 0
        gone = 0
        with self.repo.transaction() as tx:
            if self._horizon is not None:
                gone = len(tx.execute(
                    "DELETE FROM access_changes WHERE xid < CAST(? AS xid8) RETURNING 1",
                    (self._horizon,),
                ))  # fmt: skip
            row = tx.execute("SELECT CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT)")
        self._horizon = str(row[0][0])
        self._last = time.monotonic()
        return gone


async def prune_changes(repo: Repository, stop: asyncio.Event, interval: float = 900.0) -> None:
    """A server's background task: :class:`ChangePruner` every ``interval`` seconds until
    ``stop`` (in a worker thread; a database that is away is tried again next time)."""
    pruner = ChangePruner(repo, interval)
    while not stop.is_set():
        try:
            await asyncio.to_thread(pruner.run)
        except Exception as exc:  # the database away: the rows wait for the next round
            log.warning("access change pruning: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
