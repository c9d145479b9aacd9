"""OBX → ``Observation``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-obx-to-observation.html).

OBX-2 value type decides OBX-5's FHIR type: NM → valueQuantity (units OBX-6, UCUM where the
unit is UCUM), SN → Quantity with comparator / Range / Ratio, CQ → Quantity, ST TX FT →
valueString, CE CWE CNE → valueCodeableConcept, DT DTM TS → valueDateTime, TM → valueTime,
NA and other text-like types → valueString. OBX-7 → referenceRange (``low-high``, ``<x``,
``>x`` parsed; the text is always kept), OBX-8 → interpretation (table 0078 codes are the
v3 ObservationInterpretation codes), OBX-11 → status (table 0085), OBX-14 → effective,
OBX-16 → performer, OBX-17 → method, OBX-20 → bodySite.

Identity: ``<order key>/<OBX-1>[/<OBX-4>]`` under the channel's ``obx`` system, so a resent
or corrected result updates the same Observation. An NM value that is not a number is a
content error (0357 code 102); an OBX without OBX-3 is left out with a warning.
"""

from __future__ import annotations

import re
from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    xcn_reference,
)
from huitong.ingest.hl7v2.mapping.datatypes.quantities import (
    cq_quantity,
    nm_number,
    sn_value,
    ucum_unit,
)
from huitong.ingest.hl7v2.mapping.errors import MappingError
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["ObservationScope", "map_observation"]

_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# table 0085 → Observation.status (v2-to-FHIR table-0085 ConceptMap)
_STATUS = {"C": "corrected", "D": "entered-in-error", "F": "final", "I": "registered",
           "N": "cancelled", "O": "registered", "P": "preliminary", "R": "preliminary",
           "S": "preliminary", "U": "final", "W": "entered-in-error", "X": "cancelled",
           "A": "amended"}
_TEXT_TYPES = {"ST", "TX", "FT", "IS", "ID", "NA", "RP", "XPN", "XAD", "XTN", "XCN", "XON",
               "CX", "EI", "HD", "PN", "AD", "TN", "CP", "MO", "ED", "SI"}
_RANGE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(?:-|–|~|to)\s*([+-]?\d+(?:\.\d+)?)\s*$")
_BOUND = re.compile(r"^\s*(<=?|>=?|≤|≥)\s*([+-]?\d+(?:\.\d+)?)\s*$")


class ObservationScope:
    """What the OBX belongs to: the key of its order (or visit), its effective time when
    OBX-14 is empty, its specimen and its notes."""

    def __init__(self, key: str, effective: str | None = None,
                 specimen: str | None = None, category: dict[str, Any] | None = None
                 ) -> None:
        self.key = key
        self.effective = effective
        self.specimen = specimen
        self.category = category


def _value(state: MapState, obx: Segment) -> tuple[str, Any] | None:
    vtype = obx.get(2).upper()
    reps = obx.reps(5)
    if not reps:
        return None
    first = reps[0]
    offset = state.ctx.default_utc_offset
    if vtype == "NM":
        number = nm_number(first[1])
        if number is None:
            raise MappingError(102, obx.loc(5), f"OBX-5 {first[1]!r} is not a number (type NM)",
                               f"OBX-5 的值 {first[1]!r} 不是数字（类型 NM）")
        quantity: dict[str, Any] = {"value": number, **(ucum_unit(obx.value(6)) or {})}
        return "valueQuantity", quantity
    if vtype == "SN":
        sn = sn_value(first, obx.value(6))
        if sn is None:
            raise MappingError(102, obx.loc(5), "OBX-5 is not a structured numeric (type SN)",
                               "OBX-5 不是结构化数值（类型 SN）")
        return sn
    if vtype == "CQ":
        q = cq_quantity(first[1], first.part(2))
        return ("valueQuantity", q) if q else None
    if vtype in ("CE", "CWE", "CNE", "CF"):
        concept = cwe_codeable_concept(state, first)
        return ("valueCodeableConcept", concept) if concept else None
    if vtype in ("DT", "DTM", "TS", "DR"):
        value = dtm_datetime(first[1], offset)
        if value is None:
            raise MappingError(102, obx.loc(5), f"OBX-5 is not a date/time (type {vtype})",
                               f"OBX-5 不是日期时间（类型 {vtype}）")
        return "valueDateTime", value
    if vtype == "TM":
        m = re.match(r"^(\d{2})(\d{2})?(\d{2})?", first[1])
        if m is None:
            raise MappingError(102, obx.loc(5), "OBX-5 is not a time (type TM)",
                               "OBX-5 不是时间（类型 TM）")
        return "valueTime", f"{m.group(1)}:{m.group(2) or '00'}:{m.group(3) or '00'}"
    if vtype in ("TX", "FT"):
        return "valueString", "\n".join(v.text for v in reps)
    if vtype == "NA":
        return "valueString", " ".join(first[i] for i in range(1, len(first.parts) + 1))
    if vtype in _TEXT_TYPES or not vtype:
        if vtype == "ED":
            state.warn("dropped", obx.loc(5), "Encapsulated data (ED) is not kept in an "
                       "Observation", "Observation 不保存封装数据（ED）")
            return None
        return "valueString", "; ".join(v.text for v in reps)
    state.warn("unmapped-type", obx.loc(2), f"OBX value type {vtype!r} kept as text",
               f"OBX 值类型 {vtype!r} 按文本保存")
    return "valueString", "; ".join(v.text for v in reps)


def _reference_range(obx: Segment, value: dict[str, Any] | None) -> dict[str, Any] | None:
    text = obx.get(7)
    if not text:
        return None
    units = {k: value[k] for k in ("unit", "system", "code") if value and k in value}
    out: dict[str, Any] = {}
    m = _RANGE.match(text)
    b = _BOUND.match(text)
    if m:
        out["low"] = {"value": nm_number(m.group(1)), **units}
        out["high"] = {"value": nm_number(m.group(2)), **units}
    elif b:
        side = "high" if b.group(1) in ("<", "<=", "≤") else "low"
        out[side] = {"value": nm_number(b.group(2)), **units}
    out["text"] = text
    return out


def map_observation(state: MapState, obx: Segment, scope: ObservationScope,
                    notes: list[dict[str, Any]] | None = None) -> str | None:
    """Add the Observation for ``obx``; returns its fullUrl (``None``, with a warning, for
    an OBX without OBX-3: there is nothing to say what was observed)."""
    code = cwe_codeable_concept(state, obx.value(3))
    if code is None:
        state.warn("dropped", obx.loc(3), "OBX-3 (observation identifier) is empty; the "
                   "OBX is not mapped", "OBX-3（观察项标识）为空；该 OBX 未映射")
        return None
    set_id = obx.get(1) or str(obx.index)
    key = f"{scope.key}/{set_id}" + (f"/{obx.get(4)}" if obx.get(4) else "")
    identifier = (state.local_system("obx"), key)
    if state.builder.has("Observation", identifier):
        identifier = (identifier[0], f"{key}#{obx.index}")
        state.warn("duplicate-id", obx.loc(1), "OBX-1/OBX-4 repeat within the order; the "
                   "segment position is used", "OBX-1/OBX-4 在同一医嘱内重复；改用段位置识别")
    raw_status = obx.get(11).upper()
    status = _STATUS.get(raw_status)
    if status is None:
        status = "unknown"
        shown = repr(raw_status) if raw_status else "(empty)"
        state.warn("unmapped-code", obx.loc(11),
                   f"OBX-11 result status {shown} not known; Observation.status is unknown",
                   f"OBX-11 结果状态 {shown} 无法识别；Observation.status 记为 unknown")
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": identifier[0], "value": identifier[1]}],
        "status": status,
    }
    if scope.category:
        observation["category"] = [scope.category]
    observation["code"] = code
    observation["subject"] = state.subject()
    if state.encounter:
        observation["encounter"] = {"reference": state.encounter}
    offset = state.ctx.default_utc_offset
    effective = dtm_datetime(obx.get(14), offset) if obx.get(14) else None
    if effective or scope.effective:
        observation["effectiveDateTime"] = effective or scope.effective
    performers = [r for r in (xcn_reference(state, v, observation) for v in obx.reps(16)) if r]
    org = obx.value(23)
    if not org.empty and org[1]:
        performers.append({"display": org[1]})
    if performers:
        observation["performer"] = performers
    value = _value(state, obx)
    if value is not None:
        observation[value[0]] = value[1]
    elif status not in ("cancelled", "entered-in-error"):
        observation["dataAbsentReason"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
            "code": "unknown" if not obx.reps(5) else "unsupported",
        }]}
    interpretations = [
        c for c in (cwe_codeable_concept(state, v, _INTERPRETATION) for v in obx.reps(8)) if c
    ]
    for concept in interpretations:  # the v2 table 0078 codes are the v3 codes
        for coding in concept.get("coding", []):
            if coding.get("system", "").endswith(("v2-0078", "codesystem%3AHL70078")):
                coding["system"] = _INTERPRETATION
    if interpretations:
        observation["interpretation"] = interpretations
    if notes:
        observation["note"] = notes
    method = obx.value(17)
    if not method.empty:
        observation["method"] = cwe_codeable_concept(state, method)
    site = obx.value(20)
    if not site.empty:
        observation["bodySite"] = cwe_codeable_concept(state, site)
    if scope.specimen:
        observation["specimen"] = {"reference": scope.specimen}
    quantity = observation.get("valueQuantity")
    rr = _reference_range(obx, quantity)
    if rr:
        observation["referenceRange"] = [rr]
    return state.builder.put(observation, identifier)
