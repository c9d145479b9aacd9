"""One FHIR request as the interactions see it, whether it came over HTTP or from a Bundle entry.

HTTP requests (:mod:`huitong.server.app`) and ``batch``/``transaction`` entries
(:mod:`huitong.server.bundle`) are both turned into a :class:`FhirRequest`, so one handler
serves both. Header names are lower-case. Nothing here does I/O.

Failure contract: the accessors raise :class:`~huitong.fhir.errors.FhirError` — INVALID for a
malformed ``If-Match``/``Prefer``/JSON body, UNSUPPORTED_MEDIA for a body in a format we cannot
read (https://hl7.org/fhir/R4/http.html#mime-type).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from huitong.clock import Clock, IdFactory
from huitong.config import Settings
from huitong.fhir.dates import parse_date_range
from huitong.fhir.errors import Category, FhirError
from huitong.server.negotiation import check_body_type
from huitong.store.repository import Repository

__all__ = [
    "FhirRequest",
    "ServerContext",
    "parse_etag",
    "parse_query",
    "reject_nul",
    "require_type",
]

_TYPE_PREFIX = re.compile(r"^(?:[A-Z][A-Za-z]*)?\?")
# Parameters that shape the response, not the result: never search criteria.
RESPONSE_PARAMS = frozenset({"_format", "_pretty"})


@dataclass(frozen=True, slots=True)
class ServerContext:
    """What every handler may use: the repository, settings, and the injected clock and ids."""

    repo: Repository
    settings: Settings
    clock: Clock
    new_id: IdFactory
    # The authorization server when authentication is on (HUITONG_AUTH), else None.
    auth: Any = None
    # The identity service when the MPI is on (HUITONG_MPI): golden records' searches.
    identity: Any = None


@dataclass(slots=True)
class FhirRequest:
    """``path`` is relative to the FHIR base, without a leading slash (``Patient/1``)."""

    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    base_url: str = ""
    # A body already parsed (Bundle entries carry the resource as JSON, not bytes).
    parsed: Any = None
    path_params: dict[str, str] = field(default_factory=dict)

    # -- body ------------------------------------------------------------------
    def json_body(self, *, allow: tuple[str, ...] = ("json",)) -> Any:
        """The body as JSON. INVALID when it is missing or malformed."""
        if self.parsed is not None:
            return self.parsed
        check_body_type(self.headers.get("content-type"), allow)
        if not self.body.strip():
            raise FhirError(Category.INVALID, "a request body is required")
        try:
            self.parsed = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise FhirError(
                Category.INVALID, f"the body is not valid JSON: {exc.msg} at {exc.pos}",
                code="structure",
            ) from None
        return self.parsed

    def resource_body(self) -> dict[str, Any]:
        """The body as a FHIR resource (a JSON object with a ``resourceType`` string)."""
        body = self.json_body()
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FhirError(
                Category.INVALID, "the body must be a FHIR resource: a JSON object with "
                "resourceType", code="structure",
            )
        return body

    # -- parameters ------------------------------------------------------------
    def criteria(self) -> list[tuple[str, str]]:
        """Query parameters less the response-shaping ones (``_format``, ``_pretty``)."""
        return [(k, v) for k, v in self.params if k not in RESPONSE_PARAMS]

    def int_param(self, name: str, default: int, *, maximum: int | None = None) -> int:
        """A non-negative integer parameter, capped at ``maximum``. INVALID when malformed."""
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
            raise FhirError(
                Category.INVALID, f"{name} must be a non-negative integer", code="value"
            )
        value = int(raw)
        return min(value, maximum) if maximum is not None else value

    def instant_param(self, name: str) -> int | None:
        """A date/instant parameter as microseconds (the start of the period it names).
        INVALID when malformed."""
        raw = self.param(name)
        if raw is None or raw == "":
            return None
        try:
            return parse_date_range(raw)[0]
        except ValueError:
            raise FhirError(
                Category.INVALID, f"{name} must be a FHIR date or instant", code="value"
            ) from None

    def check_params(self, known: frozenset[str]) -> None:
        """INVALID for a parameter outside ``known`` (strict handling), unless the client
        asked for ``Prefer: handling=lenient``."""
        if self.lenient():
            return
        unknown = sorted({k for k, _ in self.criteria() if k not in known})
        if unknown:
            raise FhirError(
                Category.INVALID, f"unknown or unsupported parameter(s): {', '.join(unknown)}",
                code="not-supported",
            )

    def param(self, name: str) -> str | None:
        """The last value of query parameter ``name``."""
        value = None
        for k, v in self.params:
            if k == name:
                value = v
        return value

    # -- headers ---------------------------------------------------------------
    def prefer(self) -> dict[str, str]:
        """``Prefer`` as a dict (``return``, ``handling``, ``respond-async``) —
        https://hl7.org/fhir/R4/http.html#ops. Unknown preferences are ignored (RFC 7240)."""
        out: dict[str, str] = {}
        raw = self.headers.get("prefer") or ""
        for part in raw.replace(";", ",").split(","):
            name, _, value = part.strip().partition("=")
            if name:
                out[name.strip().lower()] = value.strip().strip('"').lower()
        return out

    def lenient(self) -> bool:
        return self.prefer().get("handling") == "lenient"

    def if_match(self) -> int | None:
        """The version in ``If-Match: W/"3"`` (also ``"3"`` or ``3``), or None."""
        raw = self.headers.get("if-match")
        return None if raw is None else parse_etag(raw, "If-Match")

    def if_none_exist(self) -> list[tuple[str, str]] | None:
        """``If-None-Exist`` as search parameters (conditional create), or None."""
        raw = self.headers.get("if-none-exist")
        if raw is None:
            return None
        # The header is a query string; tolerate the full "Patient?identifier=..." form.
        return parse_query(_TYPE_PREFIX.sub("", raw.strip(), count=1))


# "\u0000" as JSON writes it, preceded by an even number of backslashes (so not "\\u0000").
_JSON_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000")


def reject_nul(params: list[tuple[str, str]], body: bytes) -> None:
    """INVALID for a NUL character in a query parameter or a JSON body. FHIR strings may not
    contain control characters (https://hl7.org/fhir/R4/datatypes.html#string), and
    PostgreSQL cannot store NUL at all: refusing it here keeps both engines alike."""
    if any("\x00" in k or "\x00" in v for k, v in params):
        raise FhirError(Category.INVALID, "NUL characters are not allowed", code="value")
    if b"\\u0000" in body and _JSON_NUL.search(body):
        raise FhirError(Category.INVALID, "NUL characters (\\u0000) are not allowed in FHIR "
                        "strings", code="value")


def require_type(resource: dict[str, Any], resource_type: str) -> None:
    """INVALID unless the body's ``resourceType`` is the one in the URL."""
    if resource.get("resourceType") != resource_type:
        raise FhirError(
            Category.INVALID,
            f"the body is a {resource.get('resourceType')}, but the URL is for {resource_type}",
            expression="resourceType",
        )


def parse_etag(raw: str, header: str) -> int:
    """``W/"3"`` -> 3. INVALID for anything that is not a version number."""
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or not text.isascii():
        raise FhirError(Category.INVALID, f'{header} must look like W/"<version>"', code="value")
    return int(text)


def parse_query(text: str) -> list[tuple[str, str]]:
    """A query string as ordered (name, value) pairs, blanks kept, bad escapes replaced."""
    return parse_qsl(text, keep_blank_values=True, errors="replace")
