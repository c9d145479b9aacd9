"""Building the transaction Bundle: idempotent entries with reproducible fullUrls.

Every resource the mapping produces is keyed by one identifier ``(system, value)``. The
entry's ``fullUrl`` is a ``urn:uuid:`` derived (uuid5) from type and identifier, so the same
message always yields the same Bundle, and the request is conditional on that identifier,
so a resent or reprocessed message finds the resources it wrote the first time:

- :meth:`BundleBuilder.put` — conditional update (``PUT Type?identifier=system|value``) for
  what the message is the source of truth for (results, orders, visits, ADT demographics);
- :meth:`BundleBuilder.ensure` — conditional create (``POST`` + ``ifNoneExist``) for what the
  message only refers to (a practitioner, a location, the patient of a lab result), so a
  sparse segment never overwrites a richer record written by its owner.

Transactions: https://hl7.org/fhir/R4/http.html#transaction; conditional update:
https://hl7.org/fhir/R4/http.html#cond-update; search escaping:
https://hl7.org/fhir/R4/search.html#escaping
"""

from __future__ import annotations

import re
import uuid
from functools import lru_cache
from hashlib import sha1
from typing import Any
from urllib.parse import quote

__all__ = ["BundleBuilder", "search_value"]

_NAMESPACE = uuid.UUID("6f1d3c52-8f0b-5d36-9a57-2f1e8c0a4b71")  # Huitong v2 mapping, fixed


# Text ``quote(text, safe="")`` returns unchanged (and which needs no search escaping): most
# identifiers (MRNs, order and visit numbers) are plain letters and digits.
_URL_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
_NAMESPACE_BYTES = _NAMESPACE.bytes


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(_NAMESPACE, name))`` without building a UUID object: a message has
    dozens of entries, and the object costs more than the SHA-1 itself."""
    h = sha1(_NAMESPACE_BYTES + name.encode("utf-8")).hexdigest()
    # RFC 4122 version 5 (high nibble of byte 6) and variant 10 (top bits of byte 8).
    variant = "89ab"[int(h[16], 16) & 0x3]
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def search_value(text: str) -> str:
    """A token part escaped for a FHIR search (``\\ , | $``) and percent-encoded for a URL."""
    if _URL_PLAIN(text):
        return text
    return _quoted(text)


@lru_cache(maxsize=1024)
def _quoted(text: str) -> str:
    # Cached: what is not plain is mostly an identifier system (``urn:oid:…``, a URL), the
    # same few in every message of a channel; a unique value only passes through the cache.
    for ch in ("\\", ",", "|", "$"):
        text = text.replace(ch, "\\" + ch)
    return quote(text, safe="")


class BundleBuilder:
    """Collects entries; one entry per ``(type, identifier)``, first writer wins."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        # (type, identifier) of updates dropped because an earlier, different resource in
        # the same message claimed the same identifier (the caller turns them into warnings)
        self.collisions: list[tuple[str, tuple[str, str]]] = []

    @staticmethod
    def full_url(resource_type: str, identifier: tuple[str, str]) -> str:
        return f"urn:uuid:{_uuid5(f'{resource_type}|{identifier[0]}|{identifier[1]}')}"

    def has(self, resource_type: str, identifier: tuple[str, str]) -> bool:
        return self.full_url(resource_type, identifier) in self._entries

    def put(self, resource: dict[str, Any], identifier: tuple[str, str]) -> str:
        """Add ``resource`` as a conditional update on ``identifier``; returns its fullUrl.
        A second resource with the same identifier upgrades an earlier ``ensure`` entry but
        never replaces an earlier ``put``."""
        return self._add(resource, identifier, update=True)

    def ensure(self, resource: dict[str, Any], identifier: tuple[str, str]) -> str:
        """Add ``resource`` as a conditional create on ``identifier``; returns its fullUrl."""
        return self._add(resource, identifier, update=False)

    def _add(self, resource: dict[str, Any], identifier: tuple[str, str], *, update: bool
             ) -> str:
        rtype = resource["resourceType"]
        url = self.full_url(rtype, identifier)
        existing = self._entries.get(url)
        if existing is not None and (existing["request"]["method"] == "PUT" or not update):
            if update and existing["resource"] != resource:
                self.collisions.append((rtype, identifier))
            return url
        criteria = f"identifier={search_value(identifier[0])}|{search_value(identifier[1])}"
        request = (
            {"method": "PUT", "url": f"{rtype}?{criteria}"}
            if update
            else {"method": "POST", "url": rtype, "ifNoneExist": criteria}
        )
        self._entries[url] = {"fullUrl": url, "resource": resource, "request": request}
        return url

    def resource(self, full_url: str) -> dict[str, Any] | None:
        """The resource of the entry with ``full_url`` (to add back-references)."""
        entry = self._entries.get(full_url)
        return entry["resource"] if entry else None

    def resources(self) -> list[dict[str, Any]]:
        return [e["resource"] for e in self._entries.values()]

    def bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction"}
        if self._entries:
            bundle["entry"] = list(self._entries.values())
        return bundle
