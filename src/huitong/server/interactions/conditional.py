"""Finding the target of a conditional interaction — https://hl7.org/fhir/R4/http.html#ccreate,
https://hl7.org/fhir/R4/http.html#cond-update, https://hl7.org/fhir/R4/http.html#3.1.0.7.1.

The criteria are an ordinary strict search on one type, run inside the caller's transaction
(so a transaction Bundle sees its own earlier writes). Failure contract: INVALID when there
are no criteria or they do not parse; PRECONDITION_FAILED (412) when more than one resource
matches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import lru_cache

from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.model import SearchQuery
from huitong.server.request import reject_nul
from huitong.store.repository import StoredResource, Transaction

__all__ = ["at_most_one", "criteria_query", "lock_key", "search_matches", "single_match"]

# Parameters that shape a result page; meaningless (and ignored) as criteria.
_RESULT_PARAMS = frozenset({
    "_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total",
    "_format", "_pretty", "_contained", "_containedType",
})


def criteria_query(
    resource_type: str, criteria: Sequence[tuple[str, str]], *, what: str, limit: int = 2
) -> SearchQuery:
    """The search a conditional interaction runs: ``criteria`` as a strict search of up to
    ``limit`` current resources, without a total or anything shaping a page."""
    params = [(k, v) for k, v in criteria if k not in _RESULT_PARAMS]
    reject_nul(params, b"")
    if not params:
        raise FhirError(Category.INVALID, f"{what} needs search criteria")
    query = _fresh(_parsed(resource_type, tuple(params)))
    query.count, query.offset, query.total = limit, 0, "none"
    query.include, query.revinclude, query.summary, query.elements = [], [], None, None
    return query


@lru_cache(maxsize=4096)
def _parsed(resource_type: str, params: tuple[tuple[str, str], ...]) -> SearchQuery:
    """The parse of a conditional's criteria, kept: senders repeat the same few criteria
    (a device's identifier, a message's visit and order numbers), and the parse was about a
    tenth of a device reading's CPU. Search parameters come from the fixed R4 registry, so
    the parse of a text never changes; one that fails is not kept (it raises again)."""
    from huitong.fhir.search.parse import parse_search

    return parse_search(resource_type, list(params))


_QUERY_FIELDS = tuple(f.name for f in dataclasses.fields(SearchQuery))


def _fresh(query: SearchQuery) -> SearchQuery:
    """A copy of a kept parse whose lists the caller may change (its clauses are frozen)."""
    return SearchQuery(**{
        name: list(value) if isinstance(value := getattr(query, name), list) else value
        for name in _QUERY_FIELDS
    })  # fmt: skip


def search_matches(
    tx: Transaction, resource_type: str, criteria: Sequence[tuple[str, str]], *, what: str,
    limit: int = 2,
) -> list[StoredResource]:
    """Up to ``limit`` current resources of ``resource_type`` matching ``criteria``."""
    return tx.search(criteria_query(resource_type, criteria, what=what, limit=limit)).matches


def lock_key(resource_type: str, criteria: Sequence[tuple[str, str]]) -> str:
    """The lock that serialises conditional writes with these criteria (see at_most_one)."""
    return f"{resource_type}?" + "&".join(f"{k}={v}" for k, v in sorted(criteria))


def single_match(
    found: Sequence[StoredResource], resource_type: str, *, what: str
) -> StoredResource | None:
    """The one match among ``found`` (a conditional search's result), or None;
    PRECONDITION_FAILED when there are several."""
    if len(found) > 1:
        raise FhirError(
            Category.PRECONDITION_FAILED,
            f"{what}: the criteria match more than one {resource_type}; be more specific",
        )
    return found[0] if found else None


def at_most_one(
    tx: Transaction, resource_type: str, criteria: Sequence[tuple[str, str]], *, what: str,
) -> StoredResource | None:
    """The single match, or None; PRECONDITION_FAILED when several match. Concurrent
    conditional writes with the same criteria are serialised (see ``Transaction.lock``), so
    a message processed twice at once still creates one resource."""
    tx.lock(lock_key(resource_type, criteria))
    found = search_matches(tx, resource_type, criteria, what=what)
    return single_match(found, resource_type, what=what)
