"""XPN → FHIR ``HumanName`` (https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-datatype-xpn-to-humanname.html).

XPN.1 family (FN.1 surname), XPN.2 given, XPN.3 further given names, XPN.4 suffix, XPN.5
prefix, XPN.6 degree, XPN.7 name type (table 0200). Chinese names put the family name
(姓) in XPN.1 and the given name (名) in XPN.2; for a name written in CJK characters
``HumanName.text`` is family + given with no space (张伟), the way it is written and read.
"""

from __future__ import annotations

import re
from typing import Any

from huitong.ingest.hl7v2.mapping.message import Value

__all__ = ["is_cjk", "xpn_name"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
# table 0200 name type → HumanName.use (v2-to-FHIR ConceptMap table-0200-to-name-use)
_USE = {
    "L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "usual",
    "B": "old", "C": "old", "S": "anonymous", "T": "temp", "U": "temp", "R": "official",
}


def is_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def xpn_name(xpn: Value) -> dict[str, Any] | None:
    family, given, middle = xpn[1], xpn[2], xpn[3]
    out: dict[str, Any] = {}
    use = _USE.get(xpn[7].upper())
    if use:
        out["use"] = use
    if is_cjk(family + given):
        out["text"] = family + given + middle
    if family:
        out["family"] = family
    givens = [g for g in (given, *middle.split()) if g] if not is_cjk(middle) else (
        [g for g in (given, middle) if g]
    )
    if givens:
        out["given"] = givens
    if xpn[5]:
        out["prefix"] = [xpn[5]]
    suffixes = [s for s in (xpn[4], xpn[6]) if s]
    if suffixes:
        out["suffix"] = suffixes
    if not any(k in out for k in ("family", "given", "text")):
        return None
    return out
