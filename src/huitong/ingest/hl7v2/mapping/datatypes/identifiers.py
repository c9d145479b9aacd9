"""CX, EI and HD → FHIR ``Identifier`` and identifier systems.

v2-to-FHIR: https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-datatype-cx-to-identifier.html
and ConceptMap-datatype-hd-to-identifier… The assigning authority (CX.4, an HD) becomes the
system: its universal id when typed ISO (``urn:oid:``), UUID or URI, else its namespace id
under the channel's namespace. A Chinese resident identity card number (CX.5 ``NNCHN``, or
an authority such as ``CHN`` / ``居民身份证``) always gets system
``urn:oid:2.16.156.10011.1.3``, the one the rest of Huitong (identity matching) uses.
"""

from __future__ import annotations

import re
from typing import Any

from huitong.ingest.hl7v2.mapping.message import Value
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["RESIDENT_ID_SYSTEM", "cx_identifier", "ei_identifier", "hd_system"]

RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
_RESIDENT_AUTHORITIES = {"CHN", "居民身份证", "身份证", "RESIDENTID", "2.16.156.10011.1.3"}
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def hd_system(state: MapState, hd: Value, kind: str) -> str:
    """The system for an HD (namespace id, universal id, universal id type); ``kind`` names
    the local system used when the HD is empty (``mrn``, ``visit``, ``order``…)."""
    namespace, universal, utype = hd[1], hd[2], hd[3].upper()
    if universal:
        if utype == "ISO" or (not utype and _OID.match(universal)):
            if _OID.match(universal):
                return f"urn:oid:{universal}"
        elif utype == "UUID":
            return f"urn:uuid:{universal.lower()}"
        elif utype in ("URI", "URL") and ":" in universal and " " not in universal:
            return universal
    if namespace or universal:
        return state.local_system(f"{kind}:{namespace or universal}")
    return state.local_system(kind)


def _is_resident_id(cx: Value) -> bool:
    authority = {cx.part(4)[1].upper(), cx.part(4)[2].upper(), cx[4].upper()}
    return cx[5].upper() == "NNCHN" or bool(authority & _RESIDENT_AUTHORITIES)


def cx_identifier(state: MapState, cx: Value, kind: str = "mrn") -> dict[str, Any] | None:
    """A CX as an Identifier (``None`` when CX.1 is empty)."""
    value = cx[1]
    if not value:
        return None
    if _is_resident_id(cx):
        system = RESIDENT_ID_SYSTEM
        value = value.upper()  # the check digit X is written either way
    else:
        system = hd_system(state, cx.part(4), kind)
    out: dict[str, Any] = {"system": system, "value": value}
    id_type = cx[5]
    if id_type:
        out["type"] = {"coding": [{"system": _V2_0203, "code": id_type}]}
        if id_type.upper() == "MR":
            out["use"] = "usual"
    return out


def ei_identifier(state: MapState, ei: Value, kind: str) -> dict[str, Any] | None:
    """An EI (entity id, namespace id, universal id, universal id type) as an Identifier."""
    if not ei[1]:
        return None
    hd = Value((ei.parts[1:4]) if len(ei.parts) > 1 else ())
    return {"system": hd_system(state, hd, kind), "value": ei[1]}
