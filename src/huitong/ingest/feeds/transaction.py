"""Idempotent FHIR transaction Bundles, the one output every converter produces.

Re-importing a file, resending a device reading or re-reading a DICOM folder must not create
duplicates, so every entry is keyed by a business identifier (https://hl7.org/fhir/R4/http.html#trules):

* ``create`` — ``POST`` with ``ifNoneExist: identifier=<system>|<value>``
  (https://hl7.org/fhir/R4/http.html#ccreate): the first import writes, later ones find it and
  write nothing;
* ``update`` — ``PUT <Type>?identifier=<system>|<value>``
  (https://hl7.org/fhir/R4/http.html#cond-update): the latest content wins (each import adds a
  version, never a second resource).

``fullUrl`` is ``urn:uuid:`` + a uuid5 of type, system and value, so output is reproducible and
every record that mentions the same patient or device points at the same entry. Within one
Bundle an identity appears once: the server would otherwise create it twice (two ``ifNoneExist``
searches that both find nothing) or refuse two entries with one target, so a later record with
the same identity replaces the earlier entry and the caller is told (:meth:`Transaction.add`).

Search values are escaped as https://hl7.org/fhir/R4/search.html#escaping requires
(``\\``, ``,``, ``|``, ``$``) and then percent-encoded for the query string.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from huitong.ingest.feeds.problems import Problem

if TYPE_CHECKING:
    from huitong.ingest.feeds.batches import Unchecked

__all__ = [
    "Conversion",
    "Mode",
    "Transaction",
    "conditional_reference",
    "escape_search_value",
    "full_url",
    "identifier_criteria",
]

Mode = Literal["create", "update"]

# Fixed namespace for ingest fullUrls: uuid5(NAMESPACE_URL, "urn:huitong:ingest").
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:huitong:ingest")
_NAMESPACE_BYTES = _NAMESPACE.bytes
_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "|": "\\|", "$": "\\$"})


def escape_search_value(value: str) -> str:
    """``value`` with the search-syntax characters escaped by a backslash."""
    return value.translate(_ESCAPES)


@lru_cache(maxsize=1 << 16)  # a feed names the same patients and devices over and over
def identifier_criteria(system: str, value: str) -> str:
    """The query ``identifier=<system>|<value>``, escaped and percent-encoded."""
    token = f"{escape_search_value(system)}|{escape_search_value(value)}"
    return "identifier=" + quote(token, safe=":/|")


def conditional_reference(resource_type: str, system: str, value: str) -> str:
    """A conditional reference the server resolves inside the transaction
    (https://hl7.org/fhir/R4/http.html#trules): ``Patient?identifier=<system>|<value>``."""
    return f"{resource_type}?{identifier_criteria(system, value)}"


@lru_cache(maxsize=1 << 16)
def full_url(resource_type: str, system: str, value: str) -> str:
    """The deterministic ``urn:uuid:`` fullUrl of the entry for this identity."""
    # uuid.uuid5, inlined: the same SHA-1 name-based UUID (RFC 4122 §4.3) without building
    # a UUID object per call
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{resource_type}|{system}|{value}"
                                    .encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(slots=True)
class Transaction:
    """A transaction Bundle being assembled, one entry per identity."""

    _entries: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, resource: dict[str, Any], system: str, value: str, mode: Mode = "create"
            ) -> tuple[str, bool]:
        """Add ``resource`` keyed by the identifier ``system|value``; returns its fullUrl and
        whether it replaced an entry already in this Bundle with the same identity."""
        rtype = str(resource["resourceType"])
        url = full_url(rtype, system, value)
        criteria = identifier_criteria(system, value)
        if mode == "create":
            request = {"method": "POST", "url": rtype, "ifNoneExist": criteria}
        else:
            request = {"method": "PUT", "url": f"{rtype}?{criteria}"}
        key = (rtype, system, value)
        replaced = key in self._entries
        self._entries[key] = {"fullUrl": url, "resource": resource, "request": request}
        return url, replaced

    def resource(self, key: tuple[str, str, str]) -> dict[str, Any] | None:
        """The resource already added for (type, system, value), if any."""
        entry = self._entries.get(key)
        return None if entry is None else entry["resource"]  # type: ignore[no-any-return]

    def resources(self) -> Iterator[dict[str, Any]]:
        for entry in self._entries.values():
            yield entry["resource"]

    def bundle(self) -> dict[str, Any]:
        """The transaction Bundle (no ``entry`` when empty: FHIR JSON has no empty arrays)."""
        out: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction"}
        if self._entries:
            out["entry"] = list(self._entries.values())
        return out


@dataclass(slots=True)
class Conversion:
    """What a converter produced for one batch: the transaction ``bundle`` to POST, the
    ``problems`` found, and how many input ``records`` were read and ``accepted`` (turned into
    entries; the others are reported in ``problems``). ``first_row`` is the 1-based number of
    the batch's first record. ``unchecked``: the accepted records whose resources were not
    validated (a conversion with ``validate=False``), so a caller whose write is refused can
    still report them as a validating conversion would; not part of equality, since it says
    how the result was made, not what it is."""

    bundle: dict[str, Any]
    problems: list[Problem]
    records: int = 0
    accepted: int = 0
    first_row: int = 1
    unchecked: list[Unchecked] = field(default_factory=list, compare=False)

    @property
    def entries(self) -> list[dict[str, Any]]:
        return list(self.bundle.get("entry", ()))
