"""Storing terminology resources in the repository, one release per ``(url, version)``.

A CodeSystem, ValueSet or ConceptMap is created, or, when one with the same ``url`` and
``version`` is already stored, updated in place (a new ``meta.versionId``, so cached indexes
are rebuilt). A different ``version`` is a separate resource: loading a new release keeps the
old one (https://hl7.org/fhir/R4/resource.html#versions — business versions).

Failure contract: INVALID for a resource of another type or without a ``url``; CONFLICT when
several stored resources already share the ``url`` and ``version`` (which to replace would
be a guess); the repository's own validation errors pass through. One transaction.
"""

from __future__ import annotations

from typing import Any

from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.store.repository import Repository, WriteOutcome
from huitong.terminology.repository_source import search_escape

__all__ = ["TERMINOLOGY_TYPES", "save_terminology_resource"]

TERMINOLOGY_TYPES = frozenset({"CodeSystem", "ValueSet", "ConceptMap"})


def _criteria(resource: dict[str, Any]) -> list[tuple[str, str]]:
    version = resource.get("version")
    # Unversioned: every release of the url comes back and is filtered by the caller.
    pairs = [("url", search_escape(resource["url"])), ("_count", "2" if version else "1000"),
             ("_total", "none")]
    if version:
        pairs.append(("version", search_escape(str(version))))
    return pairs


def save_terminology_resource(repo: Repository, resource: dict[str, Any]) -> WriteOutcome:
    """Create ``resource`` or replace the stored one with its ``url`` and ``version``.

    Without a ``version`` only an unversioned resource with the same ``url`` is replaced.
    ``outcome.created`` tells which happened. ``resource`` is not modified."""
    kind = resource.get("resourceType")
    if kind not in TERMINOLOGY_TYPES:
        raise FhirError(Category.INVALID,
                        f"not a terminology resource: {kind} / 不是术语资源：{kind}")
    if not isinstance(resource.get("url"), str) or not resource["url"]:
        raise FhirError(Category.INVALID, f"{kind} needs a url / {kind} 必须有 url")
    body = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    with repo.transaction() as tx:
        matches = tx.search(parse_search(str(kind), _criteria(resource))).matches
        if not resource.get("version"):
            matches = [m for m in matches if not m.resource.get("version")]
        if len(matches) > 1:
            raise FhirError(
                Category.CONFLICT,
                f"several {kind} resources have url {resource['url']} and version "
                f"{resource.get('version')} / 多个 {kind} 资源的 url 与版本相同",
            )
        if matches:
            current = matches[0]
            return tx.update({**body, "id": current.id}, if_match=current.version_id)
        return tx.create(body)
