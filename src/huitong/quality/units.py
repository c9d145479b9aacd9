"""UCUM unit dimensions and conversions, as much as the rules need.

Units are parsed by ``ucumvert`` (a UCUM grammar over ``pint``) on the registry the
terminology layer builds once per process (a second one cost about a second of CPU and tens
of thousands of objects the garbage collector keeps walking); answers are memoised per unit
string, so the cost on the write path is a dictionary lookup.
UCUM: https://ucum.org/ucum. Annotations (``{score}``, ``{1.73_m2}``) are dimensionless, as
UCUM defines them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# The one registry of the process (huitong.terminology.units.ucum builds and guards it).
from huitong.terminology.units.ucum import _registry as _ucum

__all__ = ["Dimension", "conversion", "dimension_of"]

# Base dimensions with their exponents, sorted: (("length", -3), ("mass", 1)) for mg/dL.
Dimension = tuple[tuple[str, int], ...]

_ANNOTATION_ONLY = re.compile(r"\{[^{}]*\}")


def _quantity(unit: str) -> Any | None:
    if unit == "" or _ANNOTATION_ONLY.fullmatch(unit):
        unit = "1"
    try:
        q = _ucum().from_ucum(unit)
    except Exception:  # the parser raises several unrelated types for bad input
        return None
    return q if hasattr(q, "dimensionality") else None


@lru_cache(maxsize=2048)
def dimension_of(unit: str) -> Dimension | None:
    """The base dimensions of a UCUM unit code (``()`` for dimensionless), or None when the
    code is not valid UCUM."""
    q = _quantity(unit)
    if q is None:
        return None
    return tuple(sorted((k.strip("[]"), int(v)) for k, v in q.dimensionality.items()))


@lru_cache(maxsize=2048)
def conversion(source: str, target: str) -> tuple[float, float] | None:
    """``(scale, offset)`` with ``target_value = value * scale + offset``, or None when the
    units measure different things or are not UCUM. Offsets matter for temperatures only
    (``[degF]`` → ``Cel``)."""
    if source == target:
        return (1.0, 0.0)
    a, b = _quantity(source), _quantity(target)
    if a is None or b is None or a.dimensionality != b.dimensionality:
        return None
    registry = _ucum()
    try:
        zero = registry.Quantity(0.0 * a.magnitude, a.units).to(b.units).magnitude / b.magnitude
        one = registry.Quantity(1.0 * a.magnitude, a.units).to(b.units).magnitude / b.magnitude
    except Exception:  # pint refuses some offset-unit arithmetic; treat as not convertible
        return None
    return (float(one - zero), float(zero))
