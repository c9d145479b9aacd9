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
from operator import attrgetter

from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.model import Clause, SearchQuery, Value
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
    the parse of a text never changes; one that fails is not kept (it raises again).

    Criteria seen for the first time (every reading's and every file row's own identifier)
    are usually plain tokens on parameters seen before: they reuse that shape's parse and
    only build their values (:func:`_by_shape`)."""
    from huitong.fhir.search.parse import parse_search

    names = tuple(name for name, _ in params)
    shape = _SHAPES.get((resource_type, names))
    if shape is not None and all(_plain_token(raw) for _, raw in params):
        return _by_shape(shape, params)
    query = parse_search(resource_type, list(params))
    if _token_shape(query, params) and len(_SHAPES) < _MAX_SHAPES:
        _SHAPES[(resource_type, names)] = query
    return query


# (resource type, parameter names) -> a parse of criteria of that shape whose every clause
# is one plain token value on a parameter named as given, without modifier or chain.
_SHAPES: dict[tuple[str, tuple[str, ...]], SearchQuery] = {}
_MAX_SHAPES = 1024  # shapes are named by the server's own mappings: a handful per channel


def _plain_token(raw: str) -> bool:
    # No escape, no OR list, at most one '|': the value the token grammar reads as is.
    return bool(raw) and "\\" not in raw and "," not in raw and raw.count("|") <= 1


def _token_value(raw: str) -> Value:
    # What parse._value gives a plain token: the text unchanged, its system|code parts.
    if "|" not in raw:
        return Value(raw)
    system, code = raw.split("|")
    return Value(raw, "eq", (Value(system), Value(code)))


def _token_shape(query: SearchQuery, params: tuple[tuple[str, str], ...]) -> bool:
    """Whether ``query`` (the parse of ``params``) is one plain token clause per parameter,
    in order, and nothing else: then the parse of other plain values differs only in them."""
    if len(query.clauses) != len(params) or query.applied != list(params):
        return False
    for clause, (name, raw) in zip(query.clauses, params, strict=True):
        if (clause.param != name or clause.type != "token" or clause.modifier is not None
                or clause.chain is not None or clause.has is not None
                or not _plain_token(raw) or clause.values != (_token_value(raw),)):
            return False
    return True


def _by_shape(shape: SearchQuery, params: tuple[tuple[str, str], ...]) -> SearchQuery:
    query = _fresh(shape)
    # Built directly: dataclasses.replace reads the fields and checks them at every call,
    # several times the cost of the clause itself. A shape's clauses have no chain or _has.
    query.clauses = [
        Clause(c.param, c.type, (_token_value(raw),), None, c.resource_types,
               components=c.components)
        for c, (_, raw) in zip(shape.clauses, params, strict=True)
    ]
    query.applied = list(params)
    return query


# Every field in declaration order, read in one call: the copy below is on the path of every
# conditional entry (4x cheaper than a getattr per field into keyword arguments).
_QUERY_FIELDS = attrgetter(*(f.name for f in dataclasses.fields(SearchQuery)))


def _fresh(query: SearchQuery) -> SearchQuery:
    """A copy of a kept parse whose lists the caller may change (its clauses are frozen)."""
    return SearchQuery(*[
        value.copy() if type(value) is list else value for value in _QUERY_FIELDS(query)
    ])


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
