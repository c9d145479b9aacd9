"""The identity record: what the MPI knows about one source Patient, normalised once.

:func:`record_from_patient` is a pure function from a FHIR Patient (a dict, as stored) to an
:class:`IdentityRecord`; every comparator and blocking key reads only this record, so the
same logic serves the write pipeline, a batch re-link and the benchmarks.

FHIR Patient: https://hl7.org/fhir/R4/patient.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from huitong.mpi.normalize.addresses import Address, parse_address
from huitong.mpi.normalize.identifiers import ID_RESIDENT, Identifier, normalize_identifier
from huitong.mpi.normalize.names import PersonName, parse_name
from huitong.mpi.normalize.phones import Phone, parse_phone
from huitong.mpi.resident_id import (
    ResidentId,
    ResidentIdError,
    normalize_resident_id,
    parse_resident_id,
)

__all__ = ["IdentityRecord", "record_from_patient"]

_SEXES = frozenset({"male", "female"})


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """One source record's identifying data.

    ``birth`` is the birth date as ``YYYYMMDD`` digits, kept even when it is not a real
    date (a typo is evidence too); ``resident_id_text`` is the normalised text of a resident
    ID number that failed to parse, for the typo comparator. ``sex`` is ``male``/``female``
    or ``None`` (FHIR ``other``/``unknown`` carry no matching evidence).
    """

    source: str
    source_org: str = ""
    names: tuple[PersonName, ...] = ()
    birth: str = ""
    sex: str | None = None
    resident_id: ResidentId | None = None
    resident_id_text: str = ""
    phones: tuple[Phone, ...] = ()
    addresses: tuple[Address, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    updated_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def birth_date(self) -> date | None:
        """The birth date when ``birth`` is a real date."""
        if len(self.birth) != 8 or not self.birth.isdigit():
            return None
        try:
            return date(int(self.birth[:4]), int(self.birth[4:6]), int(self.birth[6:]))
        except ValueError:
            return None


def record_from_patient(patient: dict[str, Any], *, source_org: str = "") -> IdentityRecord:
    """Normalise a FHIR R4 Patient into an :class:`IdentityRecord`.

    The resident ID is the identifier with system ``urn:oid:2.16.156.10011.1.3`` (the
    current one wins over ``use: old``; a 15-digit number is upgraded). Names, phones
    (``telecom`` with system ``phone`` or ``sms``), addresses and the other identifiers are
    normalised by :mod:`huitong.mpi.normalize`. Never raises on odd content: what cannot be
    read is left out.
    """
    resident: ResidentId | None = None
    resident_text = ""
    identifiers: list[Identifier] = []
    for ident in sorted(_dicts(patient.get("identifier")), key=lambda i: i.get("use") == "old"):
        system, value = ident.get("system"), ident.get("value")
        if not isinstance(value, str):
            continue
        if system == ID_RESIDENT:
            try:
                parsed = parse_resident_id(value)
            except ResidentIdError:
                resident_text = resident_text or normalize_resident_id(value)
                continue
            resident = resident or parsed
            continue
        norm = normalize_identifier(system if isinstance(system, str) else None, value)
        if norm is not None and norm not in identifiers:
            identifiers.append(norm)
    names = []
    for hn in _dicts(patient.get("name")):
        if hn.get("use") == "old":
            continue
        given = tuple(g for g in hn.get("given") or () if isinstance(g, str))
        name = parse_name(text=_str(hn.get("text")), family=_str(hn.get("family")), given=given)
        if name is not None and name not in names:
            names.append(name)
    phones = []
    for cp in _dicts(patient.get("telecom")):
        if cp.get("system") in ("phone", "sms") and isinstance(cp.get("value"), str):
            phone = parse_phone(cp["value"])
            if phone is not None and phone not in phones:
                phones.append(phone)
    addresses = []
    for ad in _dicts(patient.get("address")):
        lines = tuple(x for x in ad.get("line") or () if isinstance(x, str))
        address = parse_address(
            text=_str(ad.get("text")),
            state=_str(ad.get("state")),
            city=_str(ad.get("city")),
            district=_str(ad.get("district")),
            lines=lines,
            postal_code=_str(ad.get("postalCode")),
        )
        if address is not None and address not in addresses:
            addresses.append(address)
    gender = patient.get("gender")
    birth = re.sub(r"\D", "", _str(patient.get("birthDate")) or "")
    meta = patient.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    return IdentityRecord(
        source=f"Patient/{patient.get('id', '')}",
        source_org=source_org,
        names=tuple(names),
        birth=birth if len(birth) == 8 else "",
        sex=gender if gender in _SEXES else None,
        resident_id=resident,
        resident_id_text="" if resident else resident_text,
        phones=tuple(phones),
        addresses=tuple(addresses),
        identifiers=tuple(identifiers),
        updated_at=_instant(meta.get("lastUpdated")),
    )


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
