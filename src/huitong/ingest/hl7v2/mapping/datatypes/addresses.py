"""XAD → FHIR ``Address`` (https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-datatype-xad-to-address.html).

XAD.1 street (SAD.1), XAD.2 other designation, XAD.3 city, XAD.4 state/province, XAD.5
postal code, XAD.6 country, XAD.7 address type (table 0190), XAD.9 county/district. A
Chinese address (CJK text) also gets ``text`` written largest to smallest with no spaces
(省 市 区 街道), the way it is written on an envelope.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes.names import is_cjk
from huitong.ingest.hl7v2.mapping.message import Value

__all__ = ["xad_address"]

# table 0190 → (Address.use, Address.type)
_TYPE: dict[str, tuple[str | None, str | None]] = {
    "H": ("home", None), "B": ("work", None), "O": ("work", None), "C": ("temp", None),
    "M": (None, "postal"), "BA": ("old", None), "BDL": (None, "physical"),
    "P": ("home", None), "L": ("home", None),
}


def xad_address(xad: Value) -> dict[str, Any] | None:
    lines = [s for s in (xad[1], xad[2]) if s]
    out: dict[str, Any] = {}
    use, atype = _TYPE.get(xad[7].upper(), (None, None))
    if use:
        out["use"] = use
    if atype:
        out["type"] = atype
    if lines:
        out["line"] = lines
    for key, n in (("city", 3), ("district", 9), ("state", 4), ("postalCode", 5),
                   ("country", 6)):
        if xad[n]:
            out[key] = xad[n]
    if not (lines or any(k in out for k in ("city", "state", "postalCode", "country"))):
        return None
    if is_cjk(xad.text):
        out["text"] = "".join(s for s in (xad[4], xad[3], xad[9], *lines) if s)
    return out
