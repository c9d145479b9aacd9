"""The working state of one mapping run: context, message, Bundle under construction,
warnings, and the patient and visit the message is about."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from huitong.ingest.hl7v2.mapping.bundle import BundleBuilder
from huitong.ingest.hl7v2.mapping.message import V2Message
from huitong.ingest.hl7v2.mapping.model import MappingContext, MappingWarning

__all__ = ["MapState"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class MapState:
    ctx: MappingContext
    msg: V2Message
    builder: BundleBuilder = field(default_factory=BundleBuilder)
    warnings: list[MappingWarning] = field(default_factory=list)
    patient: str | None = None  # fullUrl of the Patient entry
    patient_identifier: tuple[str, str] | None = None
    patient_identifiers: list[tuple[str, str]] = field(default_factory=list)
    encounter: str | None = None  # fullUrl of the Encounter entry, when the message has a visit
    encounter_identifier: tuple[str, str] | None = None
    # ADT is the source of demographics and visits; other messages only refer to them
    owns_patient: bool = False

    def warn(self, code: str, location: str, en: str, zh: str) -> None:
        self.warnings.append(MappingWarning(code, location, en, zh))

    def local_system(self, kind: str) -> str:
        """An identifier or code system for ids the sender does not qualify, rooted at the
        channel's namespace: ``urn:huitong:org:1`` + ``mrn`` → ``urn:huitong:org:1:mrn``."""
        ns = self.ctx.identifier_namespace.rstrip("/:")
        sep = ":" if ns.startswith("urn:") else "/"
        return f"{ns}{sep}{slug(kind)}"

    def derived_identifier(self, kind: str, *parts: str) -> tuple[str, str]:
        """A stable identifier for something the message gives no id for, from the values
        that make it unique (always including the patient)."""
        patient = "|".join(self.patient_identifier or ("", ""))
        digest = hashlib.sha256("\x1f".join((patient, *parts)).encode()).hexdigest()[:32]
        return self.local_system(kind), digest

    def subject(self) -> dict[str, Any]:
        return {"reference": self.patient} if self.patient else {}


def slug(text: str) -> str:
    """``text`` made safe for the tail of a URI (non-ASCII and punctuation percent-encoded)."""
    return quote(text.strip(), safe="") if _SAFE.search(text.strip()) else text.strip()
