"""Observations grouped for charts and tables: laboratory results by test, blood pressure,
blood glucose — from the clinic and from home devices alike.

Pure. Codes are LOINC (https://loinc.org): the blood-pressure panel 85354-9 with systolic
8480-6 and diastolic 8462-4 components (https://hl7.org/fhir/R4/bp.html), or the two as
separate Observations; glucose in blood, serum/plasma or capillary blood by meter. An
Observation with a ``device`` is a home-device reading. Glucose in mg/dL is shown in
mmol/L (÷ 18.016, the molar mass of glucose in dg/mol), the unit used in China.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from huitong.web.display import concept_text, format_when, parse_when, quantity_text

__all__ = [
    "BP_PANEL",
    "DIASTOLIC",
    "GLUCOSE_CODES",
    "SYSTOLIC",
    "BloodPressure",
    "GlucoseReading",
    "LabGroup",
    "LabPoint",
    "blood_pressure_readings",
    "glucose_readings",
    "lab_groups",
    "observation_value",
]

Resource = dict[str, Any]

BP_PANEL = "85354-9"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
# blood, serum/plasma, capillary blood by meter, fasting — in mass and in moles
GLUCOSE_CODES = frozenset({
    "15074-8", "2339-0", "2345-7", "14749-6", "41653-7", "14743-9", "2341-6", "1558-6",
    "14771-0", "41604-0", "41652-9", "1547-9",
})
_MG_PER_DL_PER_MMOL_PER_L = 18.016


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {str(c.get("code")) for c in concept.get("coding", []) if isinstance(c, dict)}


def _when(observation: Resource) -> datetime | None:
    return parse_when(observation.get("effectiveDateTime")
                      or observation.get("effectivePeriod", {}).get("start")
                      or observation.get("effectiveInstant") or observation.get("issued"))


def _number(quantity: Any) -> float | None:
    if not isinstance(quantity, dict):
        return None
    value = quantity.get("value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _device_name(observation: Resource, devices: dict[str, Resource]) -> str:
    ref = observation.get("device", {})
    device = devices.get(str(ref.get("reference", "")).rsplit("/", 1)[-1], {})
    names = [n.get("name") for n in device.get("deviceName", []) if isinstance(n, dict)]
    return str(next((n for n in names if n), None) or ref.get("display") or "")


def observation_value(observation: Resource, lang: str = "zh-CN") -> str:
    """An Observation's value as text (quantity, concept or string)."""
    if "valueQuantity" in observation:
        return quantity_text(observation["valueQuantity"])
    if "valueCodeableConcept" in observation:
        return concept_text(observation["valueCodeableConcept"], lang)
    return str(observation.get("valueString", ""))


@dataclass(frozen=True, slots=True)
class LabPoint:
    at: datetime | None
    value: float | None
    text: str
    flag: str  # ObservationInterpretation code: H, L, N, HH, LL, A…


@dataclass(slots=True)
class LabGroup:
    """All results of one test, oldest first, with the latest reference range."""

    code: str
    name: str
    unit: str
    points: list[LabPoint] = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    range_text: str = ""

    @property
    def latest(self) -> LabPoint:
        return self.points[-1]

    @property
    def chartable(self) -> list[LabPoint]:
        return [p for p in self.points if p.at is not None and p.value is not None]


def _is_lab(observation: Resource) -> bool:
    return any(coding.get("code") == "laboratory"
               for category in observation.get("category", []) if isinstance(category, dict)
               for coding in category.get("coding", []) if isinstance(coding, dict))


def lab_groups(observations: list[Resource], lang: str = "zh-CN") -> list[LabGroup]:
    """Laboratory Observations grouped by test code, tests with the newest result first."""
    groups: dict[str, LabGroup] = {}
    dated: dict[str, list[tuple[str, Resource]]] = defaultdict(list)
    for obs in observations:
        if not _is_lab(obs) or obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        coding = next((c for c in obs.get("code", {}).get("coding", []) if isinstance(c, dict)),
                      {})
        code = str(coding.get("code") or concept_text(obs.get("code"), lang))
        dated[code].append((str(_when(obs) or ""), obs))
    for code, items in dated.items():
        items.sort(key=lambda x: x[0])
        first = items[-1][1]
        group = LabGroup(code=code, name=concept_text(first.get("code"), lang),
                         unit=str(first.get("valueQuantity", {}).get("unit", "")))
        for _, obs in items:
            flags = [c for i in obs.get("interpretation", []) for c in sorted(_codes(i))]
            group.points.append(LabPoint(_when(obs), _number(obs.get("valueQuantity")),
                                         observation_value(obs, lang), flags[0] if flags else ""))
            ranges = [r for r in obs.get("referenceRange", []) if isinstance(r, dict)]
            if ranges:
                group.low = _number(ranges[0].get("low"))
                group.high = _number(ranges[0].get("high"))
                low = quantity_text(ranges[0].get("low")).split(" ")[0]
                high = quantity_text(ranges[0].get("high")).split(" ")[0]
                group.range_text = str(ranges[0].get("text") or (
                    f"{low}–{high}" if low and high else f"≥{low}" if low else
                    f"≤{high}" if high else ""))
        groups[code] = group
    return sorted(groups.values(),
                  key=lambda g: g.latest.at.timestamp() if g.latest.at else 0, reverse=True)


@dataclass(frozen=True, slots=True)
class BloodPressure:
    at: datetime
    systolic: float | None
    diastolic: float | None
    home: bool
    source: str  # the device's name for home readings

    @property
    def when(self) -> str:
        return format_when(self.at)


def blood_pressure_readings(observations: list[Resource], devices: dict[str, Resource],
                            lang: str = "zh-CN") -> list[BloodPressure]:
    """Blood-pressure readings, oldest first: panels with components, and lone systolic or
    diastolic Observations."""
    del lang  # readings are numbers; kept for a uniform signature
    readings = []
    for obs in observations:
        codes = _codes(obs.get("code"))
        at = _when(obs)
        if at is None or obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        systolic = diastolic = None
        if BP_PANEL in codes or (SYSTOLIC in codes and DIASTOLIC in codes):
            for component in obs.get("component", []):
                parts = _codes(component.get("code"))
                if SYSTOLIC in parts:
                    systolic = _number(component.get("valueQuantity"))
                elif DIASTOLIC in parts:
                    diastolic = _number(component.get("valueQuantity"))
        elif SYSTOLIC in codes:
            systolic = _number(obs.get("valueQuantity"))
        elif DIASTOLIC in codes:
            diastolic = _number(obs.get("valueQuantity"))
        else:
            continue
        if systolic is None and diastolic is None:
            continue
        home = "device" in obs
        readings.append(BloodPressure(at, systolic, diastolic, home,
                                      _device_name(obs, devices) if home else ""))
    return sorted(readings, key=lambda r: r.at)


@dataclass(frozen=True, slots=True)
class GlucoseReading:
    at: datetime
    mmol_per_l: float
    name: str
    home: bool
    source: str

    @property
    def when(self) -> str:
        return format_when(self.at)


def glucose_readings(observations: list[Resource],
                     devices: dict[str, Resource]) -> list[GlucoseReading]:
    """Blood-glucose readings in mmol/L, oldest first (lab tests and home meters)."""
    readings = []
    for obs in observations:
        if not (_codes(obs.get("code")) & GLUCOSE_CODES):
            continue
        at = _when(obs)
        quantity = obs.get("valueQuantity", {})
        value = _number(quantity)
        if at is None or value is None or obs.get("status") in ("entered-in-error",
                                                                 "cancelled"):
            continue
        unit = str(quantity.get("code") or quantity.get("unit") or "").lower()
        if unit.startswith("mg/dl"):
            value = round(value / _MG_PER_DL_PER_MMOL_PER_L, 2)
        home = "device" in obs
        readings.append(GlucoseReading(at, value, concept_text(obs.get("code")), home,
                                       _device_name(obs, devices) if home else ""))
    return sorted(readings, key=lambda r: r.at)
