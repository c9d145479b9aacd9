"""What the mapping takes and what it gives back: context, result, warnings, merge requests.

The mapping is pure: :func:`~huitong.ingest.hl7v2.mapping.map_message` turns one parsed
message into data (a transaction Bundle and its side information) and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["MappingContext", "MappingResult", "MappingWarning", "MergeRequest"]


@dataclass(frozen=True)
class MappingContext:
    """The channel's point of view.

    ``organization`` is ``Organization/<id>``, the institution the channel speaks for;
    ``identifier_namespace`` (e.g. ``urn:huitong:org:<id>``) roots the identifier systems of
    local ids (MRN, visit number, order numbers) when the message names no assigning
    authority; ``now`` is the injected clock (UTC; the mapping itself stamps nothing with it
    today: the repository stamps ``meta``); ``default_utc_offset`` is the offset
    given to message times that carry none (FHIR requires one once a time is present).
    """

    organization: str
    identifier_namespace: str
    now: datetime
    default_utc_offset: str = "+08:00"


@dataclass(frozen=True, slots=True)
class MappingWarning:
    """Something dropped or guessed. ``location`` is HL7-style: ``OBX[3].6`` is field 6 of the
    third OBX segment (1-based, counted per segment id)."""

    code: str
    location: str
    en: str
    zh: str


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """A patient merge for the identity service (ADT^A40 and friends). Identifiers are
    ``(system, value)`` pairs; the mapping itself never deletes or rewrites a patient."""

    surviving: tuple[str, str]
    merged: list[tuple[str, str]]
    reason: str


@dataclass(slots=True)
class MappingResult:
    """One message, mapped.

    ``bundle`` is a FHIR R4 ``transaction`` whose entries are idempotent (conditional writes
    keyed by identifiers, deterministic ``urn:uuid:`` fullUrls); ``zsegments`` are the ids of
    Z-segments left to the raw message; ``patient_identifiers`` are the ``(system, value)``
    pairs of the patient the message is about (the message store indexes by them).
    """

    bundle: dict[str, Any]
    warnings: list[MappingWarning] = field(default_factory=list)
    zsegments: list[str] = field(default_factory=list)
    patient_identifiers: list[tuple[str, str]] = field(default_factory=list)
    merge: MergeRequest | None = None
