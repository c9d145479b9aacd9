"""Identifiers other than names: (system, value) pairs with a normalised value.

Medical-insurance card numbers, resident health-record numbers and hospital MRNs are
compared only within their own system, because the same digits in two systems mean two
different things. The system URI *is* the assigning authority (``urn:huitong:mrn:<org>``
for an institution's MRNs); values are width-folded, upper-cased and stripped of spaces and
dashes, which clerks insert freely. Resident ID numbers get their own module
(:mod:`huitong.mpi.resident_id`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from huitong.mpi.normalize.text import fold_width

__all__ = [
    "ID_HEALTH_RECORD",
    "ID_MEDICAL_INSURANCE",
    "ID_RESIDENT",
    "MRN_PREFIX",
    "Identifier",
    "normalize_identifier",
]

# The same strings the demo region and the ingest mappings use (huitong.demo.systems).
ID_RESIDENT = "urn:oid:2.16.156.10011.1.3"
ID_HEALTH_RECORD = "urn:oid:2.16.156.10011.1.2"
ID_MEDICAL_INSURANCE = "urn:huitong:medical-insurance"
MRN_PREFIX = "urn:huitong:mrn:"

_SEPARATORS = re.compile(r"[\s\-_./]+")


@dataclass(frozen=True, slots=True, order=True)
class Identifier:
    """An identifier value within its system (the assigning authority)."""

    system: str
    value: str

    @property
    def key(self) -> str:
        """``system|value``, the FHIR token form, usable as a blocking or index key."""
        return f"{self.system}|{self.value}"


def normalize_identifier(system: str | None, value: str | None) -> Identifier | None:
    """Normalise one identifier; ``None`` when it has no system or no value left.

    Identifiers without a system cannot be compared safely and are dropped.
    """
    if not system or not value:
        return None
    cleaned = _SEPARATORS.sub("", fold_width(value)).upper()
    return Identifier(system.strip(), cleaned) if cleaned else None
