"""UCUM units (https://ucum.org/ucum) through ``ucumvert``: parse, validate, convert.

``ucumvert`` parses the full UCUM grammar with a generated parser and maps every UCUM atom
onto a ``pint`` registry, so conversions use a maintained unit library rather than a hand
table. Rules UCUM states that are applied here: annotations (``{beats}``) are equal to 1;
arbitrary units (``[IU]``, ``[arb'U]``…) convert only to the same arbitrary unit, never by
dimension. Substance conversions that need a molar mass (mg/dL ↔ mmol/L) or a published
formula (HbA1c % ↔ mmol/mol) go through :mod:`huitong.terminology.units.analytes`.
Failure contract: INVALID for a string that is not UCUM; UNPROCESSABLE for a conversion
between incompatible units.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

from huitong.fhir.errors import Category
from huitong.terminology._messages import error

__all__ = [
    "UCUM_SYSTEM", "canonical_unit", "convert", "dimension", "is_valid_unit", "same_unit",
    "to_canonical",
]

UCUM_SYSTEM = "http://unitsofmeasure.org"

_ANNOTATION = re.compile(r"\{[^}]*\}")
_ARBITRARY = re.compile(r"\[[^\]]*(?:IU|iU|arb'U|U)\]|\[[A-Za-z_]*'U\]")
_lock = threading.Lock()
_state: dict[str, Any] = {}

# pint base units → UCUM symbols. UCUM's base unit of mass is the gram (1 kg = 1000 g).
_BASE = {"meter": ("m", 1.0), "kilogram": ("g", 1000.0), "second": ("s", 1.0),
         "kelvin": ("K", 1.0), "mole": ("mol", 1.0), "candela": ("cd", 1.0),
         "radian": ("rad", 1.0), "ampere": ("A", 1.0)}


def _registry() -> Any:
    with _lock:
        if "reg" not in _state:
            from ucumvert import PintUcumRegistry

            _state["reg"] = PintUcumRegistry()  # ~1 s to build; once per process
        return _state["reg"]


def _strip_annotations(unit: str) -> str:
    text = _ANNOTATION.sub("", unit).strip()
    text = re.sub(r"[./]+$", "", text)
    text = re.sub(r"^\.", "", text)
    return text or "1"


@lru_cache(maxsize=4096)
def _parse(unit: str) -> Any:
    """The pint quantity for one ``unit`` (magnitude carries UCUM factors like ``10*3``)."""
    reg = _registry()
    text = _strip_annotations(unit)
    try:
        q = reg.from_ucum(text)
    except Exception as exc:  # ucumvert raises several parser exception types
        raise error(Category.INVALID, "bad-unit", unit=unit) from exc
    if not hasattr(q, "units"):
        raise error(Category.INVALID, "bad-unit", unit=unit)
    return q


def _tidy(x: float) -> float:
    # Binary floating point turns 5 mg/dL into 49.999999999999986 g/m3; 12 significant
    # digits is far beyond any measurement and removes that noise.
    return float(f"{x:.12g}")


def is_valid_unit(unit: str) -> bool:
    """True when ``unit`` is a valid UCUM expression (case-sensitive, as UCUM is)."""
    if not unit or unit != unit.strip():
        return False
    try:
        _parse(unit)
    except Exception:
        return False
    return True


@lru_cache(maxsize=4096)
def dimension(unit: str) -> str:
    """The dimension as text, e.g. ``"[mass] / [length] ** 3"`` (``"dimensionless"``)."""
    dims = _parse(unit).dimensionality
    return str(dims) if dims else "dimensionless"


def _arbitrary(unit: str) -> frozenset[str]:
    return frozenset(_ARBITRARY.findall(unit))


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (same dimension only; for
    substance conversions use :func:`huitong.terminology.units.analytes.convert_analyte`)."""
    if from_unit == to_unit:
        return value
    if _arbitrary(from_unit) != _arbitrary(to_unit):
        raise error(Category.UNPROCESSABLE, "incompatible-units", source=from_unit,
                    target=to_unit, why=" (arbitrary units)", why_zh="（任意单位不可换算）")
    source, target = _parse(from_unit), _parse(to_unit)
    reg = _registry()
    if source.dimensionality != target.dimensionality:
        raise error(Category.UNPROCESSABLE, "incompatible-units", source=from_unit,
                    target=to_unit)
    # Quantity(value * factor, units) keeps offset units (Cel, [degF]) correct.
    q = reg.Quantity(value * source.magnitude, source.units).to(target.units)
    return _tidy(float(q.magnitude / target.magnitude))


@lru_cache(maxsize=4096)
def same_unit(a: str, b: str) -> bool:
    """Equal after UCUM rules (annotations ignored, ``mL/min/{1.73_m2}`` = ``mL/min``)."""
    if a == b:
        return True
    try:
        return bool(abs(convert(1.0, a, b) - 1.0) < 1e-12)
    except Exception:
        return False


def to_canonical(value: float, unit: str) -> tuple[float, str]:
    """``value`` in UCUM base units (m, g, s, K, mol, cd, rad, A), e.g. 5 mg/dL → 50 g.m-3.
    Offset temperatures become kelvin. Mole stays a unit (not 6.02e23) so substance results
    stay comparable, as FHIR servers do for quantity search."""
    source = _parse(unit)
    reg = _registry()
    q = reg.Quantity(value * source.magnitude, source.units).to_base_units()
    factor = 1.0
    parts: list[str] = []
    for name, power in sorted(q.unit_items(), key=lambda kv: (kv[1] < 0, kv[0])):
        symbol, scale = _BASE.get(name, (name, 1.0))
        factor *= scale ** power
        p = int(power) if float(power).is_integer() else power
        parts.append(symbol if p == 1 else f"{symbol}{p}")
    return _tidy(float(q.magnitude) * factor), ".".join(parts) or "1"


def canonical_unit(unit: str) -> str:
    """The UCUM base-unit form of ``unit`` (``mg/dL`` → ``g.m-3``, ``mm[Hg]`` → ``g.m-1.s-2``)."""
    return to_canonical(1.0, unit)[1]
