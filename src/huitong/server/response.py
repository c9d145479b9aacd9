"""What a handler returns, and the headers FHIR derives from a stored version.

A :class:`FhirResponse` is HTTP-neutral: :mod:`huitong.server.app` renders it as an HTTP
response, :mod:`huitong.server.bundle` as a ``Bundle.entry.response``. ``ETag``,
``Last-Modified`` and ``Location`` come from the stored version — https://hl7.org/fhir/R4/http.html#versioning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from huitong.fhir.dates import format_instant
from huitong.fhir.errors import Issue
from huitong.fhir.outcome import operation_outcome
from huitong.server.request import FhirRequest
from huitong.store.repository import StoredResource, WriteOutcome

__all__ = [
    "REASONS",
    "FhirResponse",
    "etag",
    "http_date",
    "status_line",
    "write_response",
]

REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 409: "Conflict", 410: "Gone", 412: "Precondition Failed",
    413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Entity",
    429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
}


@dataclass(slots=True)
class FhirResponse:
    """``body`` is a JSON-able value, pre-serialised JSON ``bytes``, or None (no body).

    ``stored`` supplies ETag/Last-Modified; ``location`` is relative to the base
    (``Patient/1/_history/1``) and made absolute for the HTTP header.
    """

    status: int
    body: Any = None
    stored: StoredResource | None = None
    location: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def etag(version_id: int) -> str:
    return f'W/"{version_id}"'


def http_date(us: int) -> str:
    """RFC 7231 HTTP-date for ``Last-Modified``."""
    return formatdate(us / 1_000_000, usegmt=True)


def status_line(status: int) -> str:
    """``201 Created`` as ``Bundle.entry.response.status`` wants it."""
    reason = REASONS.get(status)
    return f"{status} {reason}" if reason else str(status)


def version_location(stored: StoredResource) -> str:
    return f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}"


def instant(stored: StoredResource) -> str:
    return format_instant(stored.last_updated)


def write_response(req: FhirRequest, outcome: WriteOutcome, *, status: int) -> FhirResponse:
    """The response to create/update/patch, honouring ``Prefer: return=`` —
    https://hl7.org/fhir/R4/http.html#ops: ``representation`` (default) sends the resource,
    ``minimal`` nothing, ``OperationOutcome`` an informational outcome."""
    stored = outcome.stored
    prefer = req.prefer().get("return", "representation")
    body: Any
    if prefer == "minimal":
        body = None
    elif prefer == "operationoutcome":
        verb = "created" if outcome.created else ("unchanged" if not outcome.changed else "updated")
        body = operation_outcome(
            [Issue(f"{stored.reference} {verb} (version {stored.version_id})",
                   severity="information")]
        )
    else:
        body = stored.json
    return FhirResponse(status, body, stored=stored, location=version_location(stored))
