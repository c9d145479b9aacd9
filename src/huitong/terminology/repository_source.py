"""A :class:`~huitong.terminology.source.TerminologySource` over the FHIR repository.

CodeSystem, ValueSet and ConceptMap are ordinary resources in the repository, found by
``url`` (and ``version``) through the FHIR search API
(https://hl7.org/fhir/R4/codesystem.html#search). A code system is looked up on every
operation, so a change made by any process is seen at once; but a large release (ICD-10-CM
is about 17 MB of JSON) is not fetched and parsed again while it has not changed. Each
lookup keeps what it found; before reusing it, two cheap searches ask whether anything with
the same criteria was written since (``_lastUpdated=gt…``) and whether as many still match
(``_summary=count``, which catches deletes). Returned resources carry ``meta.versionId``, so
the compiled indexes (cached by the service per url, version and versionId) follow changes.

Without a ``version`` the resource written most recently wins, as adding a new release to
:class:`~huitong.terminology.source.InMemoryTerminologySource` makes it the newest.
Returned resources are shared between callers: treat them as read-only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from huitong.fhir.dates import format_instant
from huitong.fhir.search.parse import parse_search
from huitong.store.repository import Repository, iter_pages

__all__ = ["RepositoryTerminologySource", "search_escape"]

_PAGE = 500
Criteria = tuple[tuple[str, str], ...]


def search_escape(value: str) -> str:
    """``value`` as one search value: ``\\ , $ |`` escaped —
    https://hl7.org/fhir/R4/search.html#escaping."""
    for ch in ("\\", ",", "$", "|"):
        value = value.replace(ch, "\\" + ch)
    return value


def _canonical(url: str, version: str | None) -> tuple[str, str | None]:
    # A canonical may carry its version after '|' (https://hl7.org/fhir/R4/references.html#canonical).
    base, sep, pinned = url.partition("|")
    return base, version or (pinned if sep and pinned else None)


@dataclass(frozen=True, slots=True)
class _Found:
    """The current resources matching one set of criteria, newest write first."""

    resources: tuple[dict[str, Any], ...]
    total: int
    newest: int  # the latest lastUpdated among them (µs), 0 when there are none


class RepositoryTerminologySource:
    """Terminology resources from ``repo``. Thread-safe; keep one per repository."""

    def __init__(self, repo: Repository, *, max_entries: int = 64) -> None:
        self.repo = repo
        self._max = max_entries
        self._found: OrderedDict[tuple[str, Criteria], _Found] = OrderedDict()
        self._lock = threading.Lock()

    # -- the TerminologySource protocol ------------------------------------------------------

    def code_system(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        return self._by_canonical("CodeSystem", url, version)

    def value_set(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        return self._by_canonical("ValueSet", url, version)

    def concept_maps(self, source: str | None, target: str | None) -> list[dict[str, Any]]:
        # Concept maps are few (one or two per channel): all are fetched once per change and
        # the scope is matched here, where sourceUri and sourceCanonical count alike.
        def scope(cm: dict[str, Any], side: str) -> str | None:
            return cm.get(f"{side}Uri") or cm.get(f"{side}Canonical")

        return [
            cm for cm in self._current("ConceptMap", ()).resources
            if (source is None or scope(cm, "source") == source)
            and (target is None or scope(cm, "target") == target)
        ]

    # -- more ---------------------------------------------------------------------------------

    def read(self, resource_type: str, id: str) -> dict[str, Any]:
        """The current ``resource_type/id`` (instance-level operations). NOT_FOUND when it
        does not exist, GONE when it was deleted (as the read interaction)."""
        found = self._current(resource_type, (("_id", search_escape(id)),))
        if found.resources:
            return found.resources[0]
        return self.repo.read(resource_type, id).resource  # NOT_FOUND or GONE, as read says

    def code_system_versions(self, url: str) -> list[str | None]:
        """Every stored version of the code system ``url``, oldest write first."""
        found = self._current("CodeSystem", (("url", search_escape(url)),))
        return [cs.get("version") for cs in reversed(found.resources)]

    def clear(self) -> None:
        with self._lock:
            self._found.clear()

    # -- lookups with a freshness check -------------------------------------------------------

    def _by_canonical(self, resource_type: str, url: str, version: str | None
                      ) -> dict[str, Any] | None:
        base, version = _canonical(url, version)
        criteria: Criteria = (("url", search_escape(base)),)
        if version is not None:
            criteria += (("version", search_escape(version)),)
        found = self._current(resource_type, criteria)
        return found.resources[0] if found.resources else None

    def _current(self, resource_type: str, criteria: Criteria) -> _Found:
        key = (resource_type, criteria)
        with self._lock:
            known = self._found.get(key)
        if known is not None and not self._changed(resource_type, criteria, known):
            with self._lock:
                if key in self._found:
                    self._found.move_to_end(key)
            return known
        fresh = self._fetch(resource_type, criteria)
        with self._lock:
            self._found[key] = fresh
            self._found.move_to_end(key)
            while len(self._found) > self._max:
                self._found.popitem(last=False)
        return fresh

    def _changed(self, resource_type: str, criteria: Criteria, known: _Found) -> bool:
        newer = parse_search(resource_type, [
            *criteria, ("_lastUpdated", f"gt{format_instant(known.newest)}"),
            ("_count", "1"), ("_total", "none"),
        ])
        if self.repo.search(newer).matches:
            return True
        counted = parse_search(resource_type, [*criteria, ("_summary", "count")])
        return self.repo.search(counted).total != known.total

    def _fetch(self, resource_type: str, criteria: Criteria) -> _Found:
        query = parse_search(resource_type, [*criteria, ("_count", str(_PAGE)),
                                             ("_total", "none")], max_count=_PAGE)
        stored = sorted(iter_pages(self.repo, query), key=lambda s: s.last_updated,
                        reverse=True)
        return _Found(
            tuple(s.resource for s in stored), len(stored),
            stored[0].last_updated if stored else 0,
        )
