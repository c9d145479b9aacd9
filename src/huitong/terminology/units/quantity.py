"""Normalising a FHIR Quantity to the preferred UCUM unit, keeping the original.

https://hl7.org/fhir/R4/datatypes.html#Quantity. The preferred unit is the analyte's (by
the LOINC code of the observation, see :mod:`.analytes`) or, for physical measurements, the
one unit this region reports each dimension in (kg, cm, Cel, mm[Hg]). The normalised
Quantity carries ``system`` UCUM, ``code`` and ``unit`` set to the preferred unit and the
untouched original in an extension at :data:`ORIGINAL_QUANTITY_URL`; the value keeps the
original's significant digits (at least three). Units written the way instruments and
spreadsheets write them (``mmHg``, ``mg/dl``, ``℃``, ``µmol/L``) are read through a small
alias table; anything else must be valid UCUM or the quantity is left alone.
"""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from functools import lru_cache
from typing import Any

from huitong.terminology.units.analytes import analyte_for, convert_analyte
from huitong.terminology.units.ucum import UCUM_SYSTEM, dimension, is_valid_unit, same_unit

__all__ = [
    "ORIGINAL_QUANTITY_URL", "UNIT_ALIASES", "normalise_quantity", "preferred_unit",
    "quantity_changes", "ucum_code_of",
]

# The lead may move this under the deployment's canonical base; nothing else depends on it.
ORIGINAL_QUANTITY_URL = "http://huitong.example/fhir/StructureDefinition/original-quantity"

UNIT_ALIASES: dict[str, str] = {
    "mmhg": "mm[Hg]", "mg/dl": "mg/dL", "g/dl": "g/dL", "mmol/l": "mmol/L",
    "umol/l": "umol/L", "µmol/l": "umol/L", "μmol/l": "umol/L", "g/l": "g/L",
    "mg/l": "mg/L", "°c": "Cel", "℃": "Cel", "degc": "Cel", "°f": "[degF]", "℉": "[degF]",
    "bpm": "/min", "beats/min": "/min", "次/分": "/min", "kg/m²": "kg/m2", "kg/m^2": "kg/m2",
    "lbs": "[lb_av]", "lb": "[lb_av]", "in": "[in_i]", "公斤": "kg", "千克": "kg",
    "厘米": "cm", "毫米汞柱": "mm[Hg]", "iu/l": "[IU]/L", "u/l": "U/L", "pmol/l": "pmol/L",
    "nmol/l": "nmol/L", "mmol/mol": "mmol/mol",
}

# isinstance(value, int | float), without building the union object on every call.
_NUMBER = (int, float)

_PREFERRED_BY_DIMENSION: dict[str, str] = {
    "[mass]": "kg", "[length]": "cm", "[temperature]": "Cel",
    "[mass] / [length] / [time] ** 2": "mm[Hg]",
}


def ucum_code_of(quantity: dict[str, Any]) -> str | None:
    """The UCUM code a Quantity means: its ``code`` when the system is UCUM, else its
    ``unit`` if that is valid UCUM or a known alias; None when it cannot be read."""
    if quantity.get("system") == UCUM_SYSTEM and quantity.get("code"):
        return str(quantity["code"]) if is_valid_unit(str(quantity["code"])) else None
    for text in (quantity.get("code"), quantity.get("unit")):
        if not isinstance(text, str) or not text.strip():
            continue
        alias = UNIT_ALIASES.get(text.strip().casefold())
        if alias:
            return alias
        if is_valid_unit(text.strip()):
            return text.strip()
    return None


def _digits(like: Any) -> int:
    """How many significant digits ``like`` is written with (``Decimal.normalize``'s count:
    leading and trailing zeros do not count, zero has one)."""
    text = str(like)
    # Read from the text as Python writes a number ("-0.00120", "1.5e-05", "120"): the
    # Decimal round trip costs ~8 µs a value, most of a normalised quantity's time.
    mantissa = text.partition("e")[0].lstrip("-").replace(".", "", 1)
    if mantissa.isdigit() and mantissa.isascii() and len(mantissa) <= 28:
        return len(mantissa.strip("0")) or 1
    # inf, nan, and integers longer than the decimal context's 28 digits (normalize rounds)
    return len(Decimal(text).normalize().as_tuple().digits)


def _significant(value: float, like: Any) -> float | int:
    digits = max(3, _digits(like))
    if value == 0:
        return 0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


@lru_cache(maxsize=4096)
def _affine(code: str, target: str, loinc_code: str | None) -> tuple[float, float] | None:
    # Every conversion here is y = a·x + b (temperatures and HbA1c have an offset), so two
    # evaluations through pint give the coefficients once per unit pair and test.
    try:
        b = convert_analyte(0.0, code, target, loinc_code)
        a = convert_analyte(1.0, code, target, loinc_code) - b
    except Exception:
        return None
    return a, b


@lru_cache(maxsize=4096)
def preferred_unit(code: str, loinc_code: str | None) -> str | None:
    analyte = analyte_for(loinc_code)
    if analyte is not None:
        return analyte.preferred_unit
    try:
        return _PREFERRED_BY_DIMENSION.get(dimension(code))
    except Exception:
        return None


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copied(value: Any) -> Any:
    """A deep copy of parsed JSON (dicts, lists and immutable scalars): what
    ``copy.deepcopy`` gives, several times faster (no memo, no dispatch per type)."""
    # Scalars are taken as they are (a dict's by dict(), in C) and only containers recurse:
    # a Quantity is four scalars, and a call for each cost about twice the whole copy.
    if type(value) is dict:
        out = dict(value)
        for k, v in out.items():
            if type(v) not in _SCALARS:
                out[k] = _copied(v)  # a value replaced, no key added: iterating stays valid
        return out
    if type(value) is list:
        return [v if type(v) in _SCALARS else _copied(v) for v in value]
    if value is None or type(value) in (str, int, float, bool):
        return value
    return copy.deepcopy(value)  # anything else: copied the general way


def normalise_quantity(
    quantity: dict[str, Any], *, loinc_code: str | None = None
) -> dict[str, Any] | None:
    """A new Quantity in the preferred unit with the original kept in an extension, or None
    when there is nothing to do (no value, unreadable unit, no preference, already there)."""
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        return None
    code = ucum_code_of(quantity)
    if code is None:
        return None
    target = preferred_unit(code, loinc_code)
    if target is None:
        return None
    if code == target or same_unit(code, target):
        if quantity.get("system") == UCUM_SYSTEM and quantity.get("code") == target:
            return None
        converted: float | int = value  # only the coding of the unit changes
    else:
        coefficients = _affine(code, target, loinc_code)
        if coefficients is None:
            return None
        a, b = coefficients
        converted = _significant(a * float(value) + b, value)
    out = {k: v for k, v in quantity.items() if k not in ("value", "unit", "system", "code")}
    out["extension"] = [*quantity.get("extension", []), {
        "url": ORIGINAL_QUANTITY_URL, "valueQuantity": _copied(quantity),
    }]
    out.update({"value": converted, "unit": target, "system": UCUM_SYSTEM, "code": target})
    return out


# (system, code, unit, LOINC code) → whether a numeric value would be normalised.
_CHANGES: dict[tuple[Any, Any, Any, str | None], bool] = {}


def quantity_changes(quantity: dict[str, Any], *, loinc_code: str | None = None) -> bool:
    """Whether :func:`normalise_quantity` would return a new Quantity, remembered per unit
    and test: its answer depends on the value only through the value being a number, so a
    feed's repeated units cost one lookup each."""
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        return False
    key = (quantity.get("system"), quantity.get("code"), quantity.get("unit"), loinc_code)
    try:
        found = _CHANGES.get(key)
    except TypeError:  # a list or an object where a string belongs: not remembered
        return normalise_quantity(quantity, loinc_code=loinc_code) is not None
    if found is None:
        found = normalise_quantity(quantity, loinc_code=loinc_code) is not None
        if len(_CHANGES) >= 4096:
            _CHANGES.clear()
        _CHANGES[key] = found
    return found
