"""Small FHIR R4 JSON builders shared by the demo generators, and the transaction-bundle builder.

Every builder omits absent optional values instead of writing ``None``/``""``, because
FHIR JSON forbids empty elements (https://hl7.org/fhir/R4/json.html#null).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

from huitong.demo.systems import UCUM

Resource = dict[str, Any]

# China Standard Time has had no daylight saving since 1991, so a fixed offset is exact.
CST = timezone(timedelta(hours=8))

# Parent of every demo id: uuid5(namespace, "<seed>/<key>") is stable across runs and
# machines, so PUTting the same seed twice updates instead of duplicating.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:huitong:demo")
_NAMESPACE_BYTES = NAMESPACE.bytes


def stable_id(seed: int, key: str) -> str:
    """Deterministic logical id of resource ``key`` in ``seed``'s world.

    Equal to ``str(uuid.uuid5(NAMESPACE, f"{seed}/{key}"))`` (RFC 4122 §4.3), computed
    directly because constructing ``uuid.UUID`` objects was a third of generation time.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{seed}/{key}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    """CodeableConcept with one coding; ``text`` (what the user saw) defaults to ``display``."""
    return {"coding": [coding(system, code, display)], "text": text or display}


def quantity(value: float | int, unit: str, code: str | None = None) -> dict[str, Any]:
    """UCUM Quantity; ``unit`` is the human label, ``code`` the UCUM code when they differ."""
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def reference(target: str, display: str | None = None) -> dict[str, str]:
    out = {"reference": target}
    if display:
        out["display"] = display
    return out


def date_time(moment: datetime) -> str:
    """FHIR dateTime/instant text with seconds and the +08:00 offset."""
    if moment.tzinfo is None:
        raise ValueError("demo timestamps must carry a timezone")
    return moment.astimezone(CST).isoformat(timespec="seconds")


def at(day: date, hour: int, minute: int) -> datetime:
    """Local (China Standard Time) moment on ``day``."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CST)


class BundleBuilder:
    """Collects resources into one FHIR transaction Bundle with client-assigned ids.

    Each entry is ``PUT <type>/<id>`` (https://hl7.org/fhir/R4/http.html#upsert) with
    ``fullUrl = urn:uuid:<id>``: references inside the bundle use the ``urn:uuid:`` form
    and resolve by fullUrl (https://hl7.org/fhir/R4/bundle.html#references); since the
    uuid *is* the logical id, ``urn:uuid:X`` and ``<type>/X`` name the same resource after
    the transaction commits.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._entries: list[dict[str, Any]] = []
        self._ids: dict[str, str] = {}

    def id_for(self, key: str) -> str:
        """The id ``key`` has (or will have) in this bundle; stable across runs."""
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = stable_id(self._seed, key)
        return found

    def add(self, key: str, resource: Resource) -> str:
        """Add ``resource`` (``id`` filled from ``key``); return its ``urn:uuid:`` reference."""
        resource_id = self.id_for(key)
        # Re-create the dict so "resourceType" and "id" lead, as FHIR JSON examples do.
        body = {"resourceType": resource["resourceType"], "id": resource_id, **resource}
        full_url = f"urn:uuid:{resource_id}"
        self._entries.append(
            {
                "fullUrl": full_url,
                "resource": body,
                "request": {"method": "PUT", "url": f"{body['resourceType']}/{resource_id}"},
            }
        )
        return full_url

    def bundle(self) -> Resource:
        return {"resourceType": "Bundle", "type": "transaction", "entry": self._entries}
