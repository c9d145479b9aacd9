"""Golden-record survivorship: one Patient assembled from the linked source records.

Per element, the surviving value comes from the best-ranked source that has it, where
sources rank by (1) the trust the region gives their organisation, (2) recency
(``meta.lastUpdated``), (3) completeness (how many survivorship elements the source fills).
Single-valued elements (``name``, ``gender``, ``birthDate``, ``maritalStatus``,
``deceased[x]``, ``multipleBirth[x]``) take the best source's value; repeating identifying
elements (``identifier``, ``telecom``, ``address``) are the de-duplicated union, best source
first, because each source's identifiers and contact points stay valid. ``Patient.link``
lists every source with type ``seealso``
(https://hl7.org/fhir/R4/patient-definitions.html#Patient.link).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GoldenSource", "assemble_golden"]

_SINGLE = (
    "name", "gender", "birthDate", "maritalStatus", "deceasedBoolean", "deceasedDateTime",
    "multipleBirthBoolean", "multipleBirthInteger", "communication", "contact",
)  # fmt: skip
_UNION = ("identifier", "telecom", "address")


@dataclass(frozen=True, slots=True)
class GoldenSource:
    """One linked source: its reference (``Patient/<id>``), organisation and resource."""

    reference: str
    organization: str
    patient: Mapping[str, Any]


def _completeness(patient: Mapping[str, Any]) -> int:
    return sum(1 for key in (*_SINGLE, *_UNION) if patient.get(key) not in (None, [], ""))


def _rank(source: GoldenSource, trust: Mapping[str, float]) -> tuple[float, str, int, str]:
    meta = source.patient.get("meta")
    updated = meta.get("lastUpdated", "") if isinstance(meta, Mapping) else ""
    # Sorted descending; the reference breaks ties so the result is deterministic.
    return (trust.get(source.organization, 0.0), str(updated), _completeness(source.patient),
            source.reference)  # fmt: skip


def _fingerprint(value: Any) -> str:
    if isinstance(value, Mapping):
        value = {k: v for k, v in value.items() if k not in ("id", "extension", "period")}
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def assemble_golden(
    sources: Sequence[GoldenSource],
    trust: Mapping[str, float],
    *,
    golden_id: str | None = None,
) -> dict[str, Any]:
    """The golden Patient for ``sources``; ``trust`` maps organisation → weight (higher
    wins, absent = 0). Raises ``ValueError`` when ``sources`` is empty."""
    if not sources:
        raise ValueError("a golden record needs at least one source")
    ranked = sorted(sources, key=lambda s: _rank(s, trust), reverse=True)
    golden: dict[str, Any] = {"resourceType": "Patient"}
    if golden_id:
        golden["id"] = golden_id
    for key in _SINGLE:
        for source in ranked:
            value = source.patient.get(key)
            if value not in (None, [], ""):
                golden[key] = value
                break
    for key in _UNION:
        seen: set[str] = set()
        merged: list[Any] = []
        for source in ranked:
            for item in source.patient.get(key) or ():
                fp = _fingerprint(item)
                if fp not in seen:
                    seen.add(fp)
                    merged.append(item)
        if merged:
            golden[key] = merged
    golden["active"] = any(s.patient.get("active", True) for s in ranked)
    golden["link"] = [
        {"other": {"reference": s.reference}, "type": "seealso"}
        for s in sorted(ranked, key=lambda s: s.reference)
    ]
    return golden
