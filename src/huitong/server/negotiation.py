"""Content negotiation — https://hl7.org/fhir/R4/http.html#mime-type.

Huitong speaks JSON only. A client may ask for it with ``Accept: application/fhir+json`` (the
default), ``application/json`` or ``_format=json``; asking for XML (``_format=xml``,
``Accept: application/fhir+xml``) or anything else we cannot produce is NOT_ACCEPTABLE (406).
A body sent as XML or another unreadable type is UNSUPPORTED_MEDIA (415). ``_pretty=true``
indents the response.
"""

from __future__ import annotations

from typing import Any

import orjson

from huitong.fhir.errors import Category, FhirError

__all__ = [
    "FHIR_JSON",
    "check_accept",
    "check_body_type",
    "dump_json",
    "media_type",
]

FHIR_JSON = "application/fhir+json; charset=utf-8"

_JSON_FORMATS = frozenset({
    "json", "application/json", "application/fhir+json", "application/json+fhir",
})
_JSON_RANGES = _JSON_FORMATS | {"*/*", "application/*"}
# Body media types by the kind of body a handler accepts.
BODY_TYPES: dict[str, frozenset[str]] = {
    "json": frozenset({"application/fhir+json", "application/json", "application/json+fhir"}),
    "json-patch": frozenset({"application/json-patch+json"}),
    "form": frozenset({"application/x-www-form-urlencoded"}),
}


def media_type(value: str | None) -> str:
    """The bare media type of a Content-Type/Accept item, lower-cased, parameters dropped."""
    return (value or "").split(";", 1)[0].strip().lower()


def check_accept(format_param: str | None, accept: str | None) -> None:
    """Raise NOT_ACCEPTABLE unless the client can take FHIR JSON.

    ``_format`` wins over ``Accept``. An ``Accept`` listing no acceptable range (only XML,
    only ``text/html``...) is refused; ranges with ``q=0`` do not count.
    """
    if format_param is not None:
        if media_type(format_param.replace(" ", "+")) not in _JSON_FORMATS:
            raise FhirError(
                Category.NOT_ACCEPTABLE,
                f"_format={format_param} is not supported: this server produces JSON only",
            )
        return
    if not accept or not accept.strip():
        return
    for item in accept.split(","):
        kind, _, params = item.partition(";")
        if media_type(kind) in _JSON_RANGES and "q=0" not in params.replace(" ", "").split(
            ";"
        ):
            return
    raise FhirError(
        Category.NOT_ACCEPTABLE,
        "this server produces application/fhir+json only (no XML, no HTML)",
    )


def check_body_type(content_type: str | None, allow: tuple[str, ...]) -> None:
    """Raise UNSUPPORTED_MEDIA unless the body's Content-Type is one of the ``allow`` kinds
    (``json``, ``json-patch``, ``form``). A missing Content-Type is taken as the first kind."""
    kind = media_type(content_type)
    if not kind:
        return
    if any(kind in BODY_TYPES[a] for a in allow):
        return
    accepted = ", ".join(sorted(t for a in allow for t in BODY_TYPES[a]))
    raise FhirError(
        Category.UNSUPPORTED_MEDIA,
        f"Content-Type {kind} is not supported here; send {accepted}",
    )


def dump_json(body: Any, *, pretty: bool = False) -> bytes:
    """Serialise a response body. ``bytes`` are already JSON (a stored resource)."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    if pretty:
        # Re-parse: stored resources and orjson.Fragment parts arrive pre-serialised.
        data = orjson.dumps(orjson.loads(data), option=orjson.OPT_INDENT_2)
    return data
