"""Authorization on the FHIR interfaces: the policy's decision, enforced before and inside
every query (issue 5, "Authorization"; https://hl7.org/fhir/R4/security.html).

:class:`AuthorizedRepository` is the repository a request's handlers see once a principal is
authenticated. For each read it asks :func:`huitong.access.policy.decide` about the resource
types the request names: a denied type is FORBIDDEN (403) before anything runs, so the answer
never depends on what exists. Otherwise the decisions for every resource type are compiled
(:func:`huitong.access.sql.compile_by_type`) into one restriction the store applies to every
row the statement touches — the page, ``Bundle.total``, ``_include``/``_revinclude``,
``_has``, chains, compartments, history and ``$everything`` — so a row outside the
principal's reach is simply absent: a read of it is NOT_FOUND (404), never 403. Writes are
decided per resource type before they run (403 when denied). With authentication off there is
no principal and the plain repository is used: nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from huitong.access.policy import PolicySettings, decide
from huitong.access.principal import Principal
from huitong.access.sql import Resolve, Restriction, compile_groups, type_generic
from huitong.clock import Clock
from huitong.fhir.definitions import resource_types
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.model import SearchQuery
from huitong.store.repository import (
    HistoryPage,
    Repository,
    SearchPage,
    StoredResource,
    Transaction,
    WriteOutcome,
)
from huitong.store.search_sql import Restrict

__all__ = ["DEFAULT_POLICY", "AuthorizedRepository", "AuthorizedTransaction", "read_restriction"]


# The region's settings (opt-in consent, the standard sensitive labels) until they are
# configurable.
DEFAULT_POLICY = PolicySettings()


def _forbidden(en: str, zh: str) -> FhirError:
    return FhirError(Category.FORBIDDEN, f"{en} / {zh}")


def read_restriction(
    principal: Principal,
    action: str,
    named_types: Iterable[str],
    *,
    now: int,
    dialect: str,
    settings: PolicySettings = DEFAULT_POLICY,
    resolve: Resolve | None = None,
) -> Restrict | None:
    """The restriction for a read ``action`` (an interaction code of
    :data:`~huitong.access.scopes.INTERACTION_PERMISSION`) by ``principal``.

    ``FhirError(FORBIDDEN)`` when the policy denies ``action`` on any of ``named_types`` (the
    types the request names: its URL, ``_type``): decided before any query. The result covers
    every resource type, since includes and ``$everything`` reach beyond the named ones: a
    type the policy denies contributes no rows at all. None when nothing is restricted.
    """
    ticket = principal.facts if resolve is not None else None
    named = tuple(named_types)
    memo_key = (principal, action, named, settings, dialect)
    if ticket is not None:
        kept = _MEMO.get(memo_key)
        # the same principal's same request again, on facts the cache still vouches for:
        # the restriction built then is this one (deciding and compiling cost more CPU
        # than the search it restricts)
        if kept is not None and now < kept[1] and kept[0].still_current(ticket, now):
            return kept[0]
    for rtype in named:
        decision = decide(principal, action, rtype, now=now, settings=settings)
        if not decision:
            r = decision.reason
            raise _forbidden(r.en, r.zh)
    groups = [
        (types, decide(principal, action, types[0], now=now, settings=settings).constraint)
        for types in _type_groups(principal, action, settings, now)
    ]
    restriction = compile_groups(
        groups, dialect, resolve=resolve,  # type: ignore[arg-type]
        # the request's share of the server's kept facts (only where facts are read ahead)
        ticket=ticket,
    )
    if ticket is not None and isinstance(restriction, Restriction):
        if len(_MEMO) >= _GROUPS_MAX:
            _MEMO.clear()
        _MEMO[memo_key] = (restriction, _next_window_edge(principal, now))
    return restriction


# (principal, action, types, settings, dialect) -> (restriction, usable until): see above
_MEMO: dict[tuple[Any, ...], tuple[Restriction, int]] = {}


def _next_window_edge(principal: Principal, now: int) -> int:
    """The next instant one of the principal's break-glass sessions or share-code grants
    opens or ends (the decision changes then); far in the future when none does."""
    edges = [t for b in principal.break_glass for t in (b.start, b.until) if t > now]
    edges += [g.until for g in principal.share_grants if g.until > now]
    return min(edges, default=2**62)


_GROUPS: dict[tuple[Principal, str, PolicySettings], tuple[tuple[str, ...], ...]] = {}
_GROUPS_MAX = 4096


def _type_groups(
    principal: Principal, action: str, settings: PolicySettings, now: int
) -> tuple[tuple[str, ...], ...]:
    """Every resource type, grouped by the decision ``principal`` gets for ``action``.

    Deciding all ~150 types costs milliseconds; a handful of groups is decided per request
    instead. Computed once per (principal, action); ``now`` only serves that first
    computation. Types decided alike at one time are decided alike later too: what depends
    on the time (break-glass windows, share-code expiry, consent periods, referrals) applies
    to all types of a group at once, and a share code's type list only splits a group while
    the code is valid.
    """
    key = (principal, action, settings)
    groups = _GROUPS.get(key)
    if groups is None:
        by_decision: dict[object, list[str]] = {}
        for rtype in sorted(resource_types()):
            d = decide(principal, action, rtype, now=now, settings=settings)
            same = None if d.constraint is None else type_generic(d.constraint)
            by_decision.setdefault((d.allowed, same), []).append(rtype)
        groups = tuple(tuple(types) for types in by_decision.values())
        if len(_GROUPS) >= _GROUPS_MAX:
            _GROUPS.clear()  # tokens are short-lived: a full cache is mostly stale
        _GROUPS[key] = groups
    return groups


def _check_write(
    principal: Principal, action: str, rtype: str, now: int, settings: PolicySettings
) -> None:
    decision = decide(principal, action, rtype, now=now, settings=settings)
    if not decision:
        r = decision.reason
        raise _forbidden(r.en, r.zh)


class AuthorizedTransaction:
    """A :class:`~huitong.store.repository.Transaction` whose reads are restricted and
    whose writes are decided first (bundle entries, conditional writes)."""

    def __init__(self, tx: Transaction, view: AuthorizedRepository) -> None:
        self._tx = tx
        self._view = view

    def read(self, resource_type: str, id: str, **_: Any) -> StoredResource | None:
        # resolve=False: the restriction stays SQL, evaluated inside this transaction
        restrict = self._view._restriction("read", (resource_type,), resolve=False)
        return self._tx.read(resource_type, id, restrict=restrict)

    def search(self, query: SearchQuery, **_: Any) -> SearchPage:
        return self._tx.search(
            query, restrict=self._view._search_restriction(query, resolve=False)
        )

    def search_many(self, queries: Sequence[SearchQuery]) -> list[SearchPage]:
        # Together only when none is restricted; each under its own restriction otherwise.
        restricts = [self._view._search_restriction(q, resolve=False) for q in queries]
        if all(r is None for r in restricts):
            return self._tx.search_many(queries)
        return [self._tx.search(q, restrict=r) for q, r in zip(queries, restricts, strict=True)]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._tx.execute(sql, params)

    def create(self, resource: dict[str, Any], *, id: str | None = None) -> WriteOutcome:
        self._view._check("create", resource)
        return self._tx.create(resource, id=id)

    def update(
        self,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
        method: Literal["PUT", "PATCH"] = "PUT",
    ) -> WriteOutcome:
        self._view._check("patch" if method == "PATCH" else "update", resource)
        return self._tx.update(resource, if_match=if_match, method=method)

    def delete(self, resource_type: str, id: str) -> StoredResource | None:
        self._view._check("delete", {"resourceType": resource_type})
        return self._tx.delete(resource_type, id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


class AuthorizedRepository:
    """``repo`` as ``principal`` may see it (see the module docstring). Everything that is
    not a FHIR read or write (component SQL, hooks, ``dialect``...) passes through."""

    def __init__(
        self,
        repo: Repository,
        principal: Principal,
        clock: Clock,
        settings: PolicySettings = DEFAULT_POLICY,
    ) -> None:
        self.repo = repo
        self.principal = principal
        self._clock = clock
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self.repo, name)

    # -- decisions -------------------------------------------------------------
    def _restriction(
        self, action: str, named: Iterable[str], *, resolve: bool = True
    ) -> Restrict | None:
        # resolve: the patient sets are read once now (one statement) rather than
        # re-planned and probed inside every statement of the request (access/sql.py)
        return read_restriction(
            self.principal, action, named, now=self._clock(), dialect=self.repo.dialect,
            settings=self._settings,
            resolve=getattr(self.repo, "access_query", None) if resolve else None,
        )

    def _search_restriction(
        self, query: SearchQuery, *, resolve: bool = True
    ) -> Restrict | None:
        if query.compartment is not None:
            action = "search-compartment"
        elif len(query.resource_types) == 1:
            action = "search-type"
        else:
            action = "search-system"
        return self._restriction(action, query.resource_types, resolve=resolve)

    def _check(self, action: str, resource: dict[str, Any]) -> None:
        rtype = resource.get("resourceType")
        if isinstance(rtype, str):
            _check_write(self.principal, action, rtype, self._clock(), self._settings)

    # -- reads -------------------------------------------------------------------
    def read(self, resource_type: str, id: str, **_: Any) -> StoredResource:
        restrict = self._restriction("read", (resource_type,))
        return self.repo.read(resource_type, id, restrict=restrict)

    def vread(self, resource_type: str, id: str, version_id: int, **_: Any) -> StoredResource:
        restrict = self._restriction("vread", (resource_type,))
        return self.repo.vread(resource_type, id, version_id, restrict=restrict)

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        *,
        since: int | None = None,
        at: int | None = None,
        count: int = 20,
        offset: int = 0,
        **_: Any,
    ) -> HistoryPage:
        if id is not None:
            action = "history-instance"
        elif resource_type is not None:
            action = "history-type"
        else:
            action = "history-system"
        named = (resource_type,) if resource_type is not None else ()
        restrict = self._restriction(action, named)
        return self.repo.history(
            resource_type, id, since=since, at=at, count=count, offset=offset, restrict=restrict
        )

    def search(self, query: SearchQuery, **_: Any) -> SearchPage:
        return self.repo.search(query, restrict=self._search_restriction(query))

    def everything(
        self,
        patient_id: str,
        *,
        since: int | None = None,
        types: list[str] | None = None,
        count: int = 100,
        offset: int = 0,
        linked: Sequence[str] = (),
        **_: Any,
    ) -> SearchPage:
        restrict = self._restriction("operation-everything", ("Patient", *(types or ())))
        return self.repo.everything(
            patient_id, since=since, types=types, count=count, offset=offset, linked=linked,
            restrict=restrict,
        )

    # -- writes ------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[AuthorizedTransaction]:
        with self.repo.transaction() as tx:
            yield AuthorizedTransaction(tx, self)
