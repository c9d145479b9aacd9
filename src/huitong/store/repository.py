"""The one storage API every part of Huitong uses — https://hl7.org/fhir/R4/http.html.

Two engines implement it (SQLite, PostgreSQL); nothing above the store knows which one runs.
All writes happen inside a :class:`Transaction` (one database transaction: the resource, its
history row and its search-index rows commit together or not at all). Reads outside a
transaction see committed data only.

Failure contract: methods raise :class:`huitong.fhir.errors.FhirError` with a category —
NOT_FOUND (no such resource or version), GONE (the current version is a delete),
PRECONDITION_FAILED (If-Match mismatch, or a conditional interaction matching several
resources), CONFLICT (a concurrent writer won), INVALID (the resource failed validation or the
search failed to parse), UNAVAILABLE (the database could not be reached).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

from huitong.fhir.search.model import SearchQuery

if TYPE_CHECKING:
    from huitong.store.search_sql import Restrict

__all__ = [
    "HistoryPage",
    "Repository",
    "SearchPage",
    "StoredResource",
    "Transaction",
    "WriteOutcome",
]


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One version of one resource as stored.

    ``json`` is the serialized resource with ``id`` and ``meta.versionId``/``meta.lastUpdated``
    set (for a deleted version: the last content before the delete); it can be sent to a
    client as it is. ``last_updated`` is microseconds since the epoch (UTC).
    """

    resource_type: str
    id: str
    version_id: int
    last_updated: int
    deleted: bool
    method: str  # POST | PUT | PATCH | DELETE: the interaction that made this version
    json: bytes

    @property
    def resource(self) -> dict[str, Any]:
        """The resource as a fresh dict (parsed on each call: callers may mutate it)."""
        return orjson.loads(self.json)  # type: ignore[no-any-return]

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """The result of a write. ``created`` is True when a new resource came into being;
    ``changed`` is False when a conditional create found an existing match (nothing written)."""

    stored: StoredResource
    created: bool
    changed: bool = True


@dataclass(slots=True)
class SearchPage:
    """One page of search results: ``matches`` in order, then ``included`` (mode=include).

    ``total`` is None when not requested (``_total=none``) or unknown; ``has_next`` tells
    whether another page follows (the server builds the paging links from the query).
    """

    matches: list[StoredResource]
    included: list[StoredResource] = field(default_factory=list)
    total: int | None = None
    has_next: bool = False


@dataclass(slots=True)
class HistoryPage:
    """Versions, newest first, as FHIR history requires; ``total`` counts all versions
    matching the history request (not just this page)."""

    entries: list[StoredResource]
    total: int
    has_next: bool = False


class Transaction(Protocol):
    """Reads and writes inside one open database transaction.

    Every write validates the resource (structural validation), assigns ``id`` (server ids
    for create, client ids for update), stamps ``meta.versionId``/``meta.lastUpdated`` from
    the repository's clock, stores it and (re)builds its search-index rows.

    ``state`` is where components installed on the write path (checks, hooks) keep their
    bookkeeping for this transaction, each under its own key: it lives as long as the
    transaction, so nothing has to be looked up by transaction on every write.
    """

    state: dict[Any, Any]

    def read(
        self, resource_type: str, id: str, *, restrict: Restrict | None = None
    ) -> StoredResource | None:
        """The current version (possibly a deleted one), or None if it never existed (or
        ``restrict``, an access restriction, hides it)."""
        ...

    def lock(self, key: str) -> None:
        """Hold a lock on ``key`` until this transaction ends, so two transactions doing a
        conditional create with the same criteria cannot both find nothing and both
        create (the second waits, then sees the first one's resource)."""
        ...

    def lock_many(self, keys: Iterable[str]) -> None:
        """``lock`` for several keys at once: one round trip, taken in one global order so
        two transactions wanting the same keys cannot deadlock."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on a component's own table (the message store, identity links,
        the audit log…) inside this transaction, so it commits or rolls back with the
        resources written beside it. Placeholders are ``?`` on both engines; rows a
        ``SELECT`` or ``RETURNING`` produces are returned. Never for FHIR tables."""
        ...

    def execute_many(self, statements: Sequence[tuple[str, Sequence[Any]]]
                     ) -> list[list[tuple[Any, ...]]]:
        """``execute`` of each ``(sql, params)`` in order, the rows of each; on PostgreSQL
        in one round trip."""
        ...

    def execute_later(self, sql: str, params: Sequence[Any] = ()) -> None:
        """``execute`` for a statement whose answer nobody reads (an insert, a bookkeeping
        update): it runs before anything this transaction sends next, and on PostgreSQL
        travels in that next round trip. A failure surfaces there and fails the
        transaction all the same."""
        ...

    def create(self, resource: dict[str, Any], *, id: str | None = None) -> WriteOutcome:
        """Store a new resource with a server-assigned id (``id`` forces one: used when a
        transaction bundle pre-assigns ids for ``urn:uuid:`` references)."""
        ...

    def update(
        self,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
        method: Literal["PUT", "PATCH"] = "PUT",
    ) -> WriteOutcome:
        """Create or update ``resource`` under its own ``resourceType``/``id``
        (update-as-create with a client id). ``if_match`` is the expected current version:
        PRECONDITION_FAILED if it differs (or the resource does not exist). An update whose
        content equals the current version apart from ``meta.versionId``/``lastUpdated``
        makes no new version (as HAPI FHIR): the outcome is the current version with
        ``changed`` False."""
        ...

    def delete(self, resource_type: str, id: str) -> StoredResource | None:
        """Soft-delete: write a deleted version and drop the index rows. Returns the delete
        version, or None if there was nothing to delete (absent or already deleted)."""
        ...

    def search(self, query: SearchQuery, *, restrict: Restrict | None = None) -> SearchPage:
        """Run a parsed search inside this transaction (sees this transaction's writes)."""
        ...

    def search_many(self, queries: Sequence[SearchQuery]) -> list[SearchPage]:
        """``search`` of each query (unrestricted), the pages in order; on PostgreSQL the
        single-statement ones (a conditional write's criteria) share one round trip."""
        ...

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read these ``(type, id)`` resources ahead in one statement for the reads by id
        about to follow (each then answered from it, as of that statement)."""
        ...

    def lock_current(self, keys: Iterable[tuple[str, str]]) -> None:
        """Lock the current rows of these ``(type, id)`` resources, about to be updated or
        deleted, in one statement and in one global order (instead of one by one as each
        update reads its row)."""
        ...

    def expect_writes(self, n: int) -> None:
        """About ``n`` versions are about to be written: row ids are then drawn in one block
        of that size rather than in growing blocks (a round trip each on PostgreSQL)."""
        ...


class Repository(Protocol):
    """The storage API. ``dialect`` is ``"sqlite"`` or ``"postgresql"``."""

    dialect: str

    def transaction(self) -> AbstractContextManager[Transaction]:
        """Open a write transaction: committed when the block exits normally, rolled back
        when it raises. Writes through SQLite are serialised (one writer at a time)."""
        ...

    def read(
        self, resource_type: str, id: str, *, restrict: Restrict | None = None
    ) -> StoredResource:
        """FHIR read: the current version. NOT_FOUND if it never existed, GONE if deleted.

        ``restrict`` (here and below) is an access restriction
        (:data:`~huitong.store.search_sql.Restrict`) applied inside the SQL to every row
        touched; a row it hides is NOT_FOUND, exactly as if it did not exist."""
        ...

    def vread(
        self, resource_type: str, id: str, version_id: int, *, restrict: Restrict | None = None
    ) -> StoredResource:
        """FHIR vread. NOT_FOUND if no such version; GONE if that version is a delete."""
        ...

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        *,
        since: int | None = None,
        at: int | None = None,
        count: int = 20,
        offset: int = 0,
        restrict: Restrict | None = None,
    ) -> HistoryPage:
        """Instance (type and id), type (type only) or system history, newest first.

        ``since``: versions with last_updated >= since (µs). ``at``: the version of each
        resource current at that instant. NOT_FOUND for instance history of an unknown id.
        """
        ...

    def search(self, query: SearchQuery, *, restrict: Restrict | None = None) -> SearchPage:
        """Run a parsed search (see :mod:`huitong.fhir.search.parse`)."""
        ...

    def everything(
        self,
        patient_id: str,
        *,
        since: int | None = None,
        types: list[str] | None = None,
        count: int = 100,
        offset: int = 0,
        linked: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> SearchPage:
        """``Patient/{id}/$everything``: the patient, every resource in its compartment and the
        resources those reference. NOT_FOUND/GONE for the patient as for read.
        ``linked``: more Patient ids of the same person (the source records of a golden
        record), whose compartments are included as if they were one."""
        ...

    def add_write_hook(
        self,
        name: str,
        resource_types: Iterable[str],
        hook: Callable[[Transaction, StoredResource, dict[str, Any] | None], None],
    ) -> None:
        """Run ``hook(tx, stored, content)`` inside the writing transaction after every write
        of ``resource_types`` (``content`` None for a delete); a name registered again
        replaces its earlier hook."""
        ...

    def add_write_check(
        self, name: str, check: Callable[[Transaction, dict[str, Any]], None]
    ) -> None:
        """Run ``check(tx, content)`` on every resource about to be written (validated, not
        yet indexed); raising FhirError refuses the write. A name again replaces it."""
        ...

    def add_commit_hook(self, name: str, hook: Callable[[Transaction], None]) -> None:
        """Run ``hook(tx)`` once at the end of every write transaction, before it commits."""
        ...

    def add_write_transform(
        self,
        name: str,
        resource_types: Iterable[str],
        transform: Callable[[Transaction, dict[str, Any]], dict[str, Any]],
    ) -> None:
        """Run ``content = transform(tx, content)`` on every resource of ``resource_types``
        about to be written (stamped, not yet validated); a name again replaces it."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only statement on a component's own table (see
        ``Transaction.execute``) and return its rows."""
        ...

    def lookup_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``query`` for a statement of one shape at every call that looks things up by
        key (a request's authentication); PostgreSQL plans it once."""
        ...

    def counts_by_type(self) -> dict[str, int]:
        """Current (non-deleted) resources per type."""
        ...

    def close(self) -> None: ...


def iter_pages(repo: Repository, query: SearchQuery) -> Iterator[StoredResource]:
    """Every match of ``query``, page by page (for exports and tests)."""
    offset = query.offset
    while True:
        query.offset = offset
        page = repo.search(query)
        yield from page.matches
        if not page.has_next:
            return
        offset += len(page.matches)
