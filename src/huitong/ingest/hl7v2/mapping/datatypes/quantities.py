"""NM, SN and CQ → FHIR decimals, ``Quantity``, ``Range`` and ``Ratio``; units → UCUM.

SN (structured numeric): comparator, num1, separator/suffix, num2 — ``<^5``, ``^10^-^20``
(range), ``^1^:^128`` (ratio), ``^2^+`` (a category). v2-to-FHIR:
https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-datatype-sn-to-quantity.html.

A unit is coded in UCUM (``http://unitsofmeasure.org``) when the sender says so (coding
system ``UCUM``) or when its code is a UCUM expression built from the common atoms below;
the usual lab spellings that are not UCUM (``mmHg``, ``K/uL``, ``mEq/L``…) are translated.
Anything else stays as ``Quantity.unit`` text without a system, as FHIR allows.
"""

from __future__ import annotations

import re
from typing import Any

from huitong.ingest.hl7v2.mapping.message import Value

__all__ = ["cq_quantity", "nm_number", "sn_value", "ucum_unit"]

UCUM = "http://unitsofmeasure.org"
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_PREFIXES = ("da", "Y", "Z", "E", "P", "T", "G", "M", "k", "h", "d", "c", "m", "u", "n",
             "p", "f", "a")
_METRIC = {"g", "L", "l", "m", "s", "mol", "eq", "U", "[IU]", "[iU]", "Pa", "bar", "Hz",
           "kat", "Cel", "K", "osm", "J", "W", "V", "A", "Ohm", "Bq", "Gy", "Sv", "cal",
           "t", "dB", "B", "mm[Hg]", "m[H2O]", "[pH]", "N", "C"}
_NON_METRIC = {"%", "min", "h", "d", "wk", "mo", "a", "[degF]", "[in_i]", "[ft_i]",
               "[lb_av]", "[oz_av]", "[mi_i]", "[ppm]", "[ppb]", "[drp]", "{cells}",
               "[HPF]", "[LPF]", "[arb'U]", "[pptr]", "deg", "'", "''", "[iU]", "[IU]",
               "[kn_i]", "[gal_us]", "[foz_us]", "[pt_us]", "[qt_us]", "10*", "10^"}
# common non-UCUM spellings seen in lab and ADT messages → UCUM
_ALIASES = {
    "MMHG": "mm[Hg]", "MM HG": "mm[Hg]", "K/UL": "10*3/uL", "K/MM3": "10*3/uL",
    "X10E3/UL": "10*3/uL", "10^3/UL": "10*3/uL", "X10(3)/UL": "10*3/uL",
    "M/UL": "10*6/uL", "X10E6/UL": "10*6/uL", "10^6/UL": "10*6/uL", "MILL/UL": "10*6/uL",
    "10^9/L": "10*9/L", "X10^9/L": "10*9/L", "10^12/L": "10*12/L", "X10^12/L": "10*12/L",
    "MEQ/L": "meq/L", "IU/L": "[IU]/L", "IU/ML": "[IU]/mL", "MIU/ML": "m[IU]/mL",
    "UIU/ML": "u[IU]/mL", "DEGC": "Cel", "°C": "Cel", "C": "Cel", "DEGF": "[degF]",
    "°F": "[degF]", "F": "[degF]", "IN": "[in_i]", "INCH": "[in_i]", "INCHES": "[in_i]",
    "LB": "[lb_av]", "LBS": "[lb_av]", "OZ": "[oz_av]", "BPM": "/min", "BEATS/MIN": "/min",
    "/MIN": "/min", "BREATHS/MIN": "/min", "SEC": "s", "SECONDS": "s", "KG/M2": "kg/m2",
    "MG/HR": "mg/h", "ML/HR": "mL/h", "UNITS/HR": "[iU]/h", "MCG/KG/MIN": "ug/kg/min",
    "MCG": "ug", "CC": "mL", "摄氏度": "Cel", "次/分": "/min", "℃": "Cel",
}
_ATOM = re.compile(r"^(10\*[+-]?\d+|10\^[+-]?\d+|\{[^}]*\}|[^.\/\d{}+-][^.\/{}]*?)([+-]?\d+)?$")


def _atom_ok(atom: str) -> bool:
    if atom in _METRIC or atom in _NON_METRIC:
        return True
    if re.fullmatch(r"10\*[+-]?\d+", atom) or re.fullmatch(r"\{[^}]*\}", atom):
        return True
    return any(atom.startswith(p) and atom[len(p):] in _METRIC for p in _PREFIXES)


def _is_ucum(code: str) -> bool:
    """Whether ``code`` is a UCUM expression over the atoms known here (products ``.``,
    quotients ``/``, integer exponents, annotations ``{…}``)."""
    if not code or " " in code or (code.isdigit() and code != "1"):
        return False  # a bare number is a local unit code, not a unit
    for term in re.split(r"[./]", code.removeprefix("/")):
        if not term:
            return False
        if re.fullmatch(r"\d+", term):
            continue
        m = _ATOM.match(term)
        if m is None or not _atom_ok(m.group(1)):
            return False
    return True


def ucum_unit(unit: Value) -> dict[str, Any] | None:
    """Quantity unit fields (``unit``, and ``system``/``code`` when UCUM) from a CWE/CE.
    The code is tried first, then the text (senders often put a local code in CWE.1 and
    the unit itself in CWE.2)."""
    code, text, system = unit[1], unit[2], unit[3].upper()
    if not code and not text:
        return None
    shown = text or code
    if system == "UCUM" and code:
        return {"unit": shown, "system": UCUM, "code": code}
    for candidate in (code, text):
        # the lab spellings first: K/uL is valid UCUM (kelvin per microlitre) but means 10*3/uL
        alias = _ALIASES.get(candidate.upper())
        if alias:
            return {"unit": shown, "system": UCUM, "code": alias}
        if _is_ucum(candidate) and system in ("", "ANSI", "ANS+", "ISO+", "L", "99UCUM"):
            return {"unit": shown, "system": UCUM, "code": candidate}
    return {"unit": shown}


def nm_number(text: str) -> int | float | None:
    """An NM as a JSON number (``None`` when not numeric); integers stay integers."""
    t = text.strip()
    if not _NUMBER.match(t):
        return None
    if re.fullmatch(r"[+-]?\d+", t):
        return int(t)
    return float(t)


def cq_quantity(number: str, unit: Value) -> dict[str, Any] | None:
    """A quantity from a number and a unit CWE (CQ, or an OBX-5 NM with OBX-6)."""
    value = nm_number(number)
    if value is None:
        return None
    out: dict[str, Any] = {"value": value}
    units = ucum_unit(unit)
    if units:
        out.update(units)
    return out


def sn_value(sn: Value, unit: Value) -> tuple[str, dict[str, Any]] | None:
    """An SN as ``(valueX element name, value)``: Quantity (with comparator), Range or
    Ratio; ``None`` when it does not parse."""
    comparator, n1, sep, n2 = sn[1], sn[2], sn[3], sn[4]
    units = ucum_unit(unit) or {}
    if sep in ("-", ":", "/") and n2:
        a, b = nm_number(n1), nm_number(n2)
        if a is None or b is None:
            return None
        if sep == "-":
            return "valueRange", {"low": {"value": a, **units}, "high": {"value": b, **units}}
        return "valueRatio", {"numerator": {"value": a}, "denominator": {"value": b}}
    number = nm_number(n1)
    if number is None:
        return None
    q: dict[str, Any] = {"value": number, **units}
    if comparator in ("<", ">", "<=", ">="):
        q["comparator"] = comparator
    elif comparator not in ("", "="):
        return None
    return "valueQuantity", q
