"""The Bundles a server returns for reads of many: ``searchset`` and ``history`` —
https://hl7.org/fhir/R4/bundle.html, https://hl7.org/fhir/R4/search.html#paging,
https://hl7.org/fhir/R4/http.html#history.

Paging links are stable and stateless: each is the request's applied parameters plus
``_count`` and the offset parameter, so any page can be fetched again later. Stored
resources are spliced into the Bundle as pre-serialised JSON (``orjson.Fragment``): a page
of results is never parsed and re-serialised unless ``_summary``/``_elements`` asks for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

import orjson

from huitong.fhir.dates import format_instant
from huitong.fhir.search.model import SearchQuery
from huitong.fhir.search.parse import PAGING_PARAM
from huitong.server.response import etag, status_line
from huitong.server.subsetting import is_subsetting, subset
from huitong.store.repository import HistoryPage, SearchPage, StoredResource

__all__ = [
    "OFFSET_PARAM",
    "history_bundle",
    "page_links",
    "query_bundle",
    "searchset_bundle",
]

# The search parser names the offset parameter; paging links (search and history) follow it.
OFFSET_PARAM: str = PAGING_PARAM
_PAGING = frozenset({"_count", OFFSET_PARAM})


def _url(base: str, path: str, params: Iterable[tuple[str, str]]) -> str:
    query = urlencode(list(params), safe=":|,/$*")
    where = f"{base}/{path}" if path else base
    return f"{where}?{query}" if query else where


def page_links(
    base: str, path: str, applied: Sequence[tuple[str, str]], *, count: int, offset: int,
    has_next: bool,
) -> list[dict[str, str]]:
    """``self``, ``first``, ``previous`` and ``next`` links for one page."""
    kept = [(k, v) for k, v in applied if k not in _PAGING]

    def link(relation: str, at: int) -> dict[str, str]:
        params = [*kept, ("_count", str(count))]
        if at:
            params.append((OFFSET_PARAM, str(at)))
        return {"relation": relation, "url": _url(base, path, params)}

    links = [link("self", offset), link("first", 0)]
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    if has_next:
        links.append(link("next", offset + count))
    return links


def _content(stored: StoredResource, summary: str | None, elements: list[str] | None) -> Any:
    if is_subsetting(summary, elements):
        return subset(stored.resource, summary, elements)
    return orjson.Fragment(stored.json)


def searchset_bundle(
    base: str, path: str, page: SearchPage, *, applied: Sequence[tuple[str, str]], count: int,
    offset: int, now: int, summary: str | None = None, elements: list[str] | None = None,
) -> dict[str, Any]:
    """A ``searchset`` Bundle: matches (mode ``match``) then includes (mode ``include``).
    ``summary="count"`` gives the total only; ``summary``/``elements`` subset the matches."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": format_instant(now)},
        "type": "searchset",
    }
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = page_links(
        base, path, applied, count=count, offset=offset, has_next=page.has_next and count > 0
    )
    if summary == "count":
        return bundle
    entries = [
        {
            "fullUrl": f"{base}/{s.resource_type}/{s.id}",
            "resource": _content(s, summary, elements),
            "search": {"mode": "match"},
        }
        for s in page.matches
    ]
    entries += [
        {
            "fullUrl": f"{base}/{s.resource_type}/{s.id}",
            "resource": orjson.Fragment(s.json),
            "search": {"mode": "include"},
        }
        for s in page.included
    ]
    if entries:
        bundle["entry"] = entries
    return bundle


def query_bundle(
    base: str, path: str, query: SearchQuery, page: SearchPage, *, now: int
) -> dict[str, Any]:
    """The searchset Bundle for a parsed search."""
    return searchset_bundle(
        base, path, page, applied=query.applied, count=query.count, offset=query.offset,
        now=now, summary=query.summary, elements=query.elements,
    )


def history_entry(base: str, stored: StoredResource) -> dict[str, Any]:
    """One version as a history entry. A delete has request DELETE and no resource; a
    PATCH version is reported as PUT because the entry carries the whole resource (replaying
    it as PUT reproduces the version)."""
    ref = stored.reference
    response = {
        "etag": etag(stored.version_id),
        "lastModified": format_instant(stored.last_updated),
    }
    entry: dict[str, Any] = {"fullUrl": f"{base}/{ref}"}
    if stored.deleted:
        entry["request"] = {"method": "DELETE", "url": ref}
        response["status"] = status_line(204)
    else:
        entry["resource"] = orjson.Fragment(stored.json)
        if stored.method == "POST":
            entry["request"] = {"method": "POST", "url": stored.resource_type}
        else:
            entry["request"] = {"method": "PUT", "url": ref}
        response["status"] = status_line(201 if stored.version_id == 1 else 200)
    entry["response"] = {"status": response.pop("status"), **response}
    return entry


def history_bundle(
    base: str, path: str, applied: Sequence[tuple[str, str]], page: HistoryPage, *,
    count: int, offset: int, now: int,
) -> dict[str, Any]:
    """A ``history`` Bundle, newest version first."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": format_instant(now)},
        "type": "history",
        "total": page.total,
        "link": page_links(
            base, path, applied, count=count, offset=offset, has_next=page.has_next
        ),
    }
    if page.entries:
        bundle["entry"] = [history_entry(base, s) for s in page.entries]
    return bundle
