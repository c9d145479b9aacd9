"""XTN → FHIR ``ContactPoint`` (https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-datatype-xtn-to-contactpoint.html).

XTN.1 formatted number (pre-2.7), XTN.2 use (table 0201), XTN.3 equipment (table 0202),
XTN.4 e-mail, XTN.5–8 country, area, local number, extension, XTN.12 unformatted number.
A Chinese mobile number (11 digits starting 1[3-9], optionally +86) is used ``mobile``.
"""

from __future__ import annotations

import re
from typing import Any

from huitong.ingest.hl7v2.mapping.message import Value

__all__ = ["xtn_contact_point"]

_USE = {"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work", "EMR": None,
        "NET": None, "ASN": None, "BPN": None, "PRS": "mobile"}
_SYSTEM = {"PH": "phone", "FX": "fax", "MD": "other", "CP": "phone", "SAT": "phone",
           "BP": "pager", "INTERNET": "email", "X.400": "email", "TDD": "other",
           "TTY": "other"}
_CN_MOBILE = re.compile(r"^(?:\+?86[- ]?)?1[3-9]\d{9}$")


def xtn_contact_point(xtn: Value, default_use: str | None = None) -> dict[str, Any] | None:
    equipment = xtn[3].upper()
    email = xtn[4]
    if equipment in ("INTERNET", "X.400") or xtn[2].upper() == "NET" or (email and not xtn[1]):
        if not email and "@" not in xtn[1]:
            return None
        return {"system": "email", "value": email or xtn[1]}
    value = xtn[1] or xtn[12]
    if not value and xtn[7]:
        value = "".join(
            p for p in (f"+{xtn[5]} " if xtn[5] else "", f"({xtn[6]}) " if xtn[6] else "",
                        xtn[7], f" ext. {xtn[8]}" if xtn[8] else "") if p
        )
    if not value:
        return None
    out: dict[str, Any] = {"system": _SYSTEM.get(equipment, "phone"), "value": value}
    use = _USE.get(xtn[2].upper(), default_use)
    digits = re.sub(r"[\s()-]", "", value)
    if equipment == "CP" or _CN_MOBILE.match(digits):
        use = "mobile"
    if use:
        out["use"] = use
    return out
