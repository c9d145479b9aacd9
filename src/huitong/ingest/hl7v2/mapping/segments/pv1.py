"""PV1 (+ PV2) → ``Encounter``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-pv1-to-encounter.html,
ConceptMap-segment-pv2-to-encounter.html).

The visit is keyed by PV1-19 (visit number), else PV1-50 (alternate visit id), else a
stable id derived from the patient, the patient class and the admit time (with a warning:
later messages for the same visit can only be matched if they carry the same values). The
status is decided by the trigger event (the caller passes it); without one it is derived
from the PV1 dates.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    cx_identifier,
    dtm_datetime,
    pl_location,
    xcn_reference,
)
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_encounter"]

_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_PART = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# table 0004 patient class → v3 ActCode encounter class (v2-to-FHIR table-0004 ConceptMap)
_CLASS = {
    "E": ("EMER", "emergency"), "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"), "P": ("PRENC", "pre-admission"),
    "R": ("AMB", "ambulatory"), "B": ("IMP", "inpatient encounter"),
    "C": ("AMB", "ambulatory"),
}
_PARTICIPANTS = ((7, "ATND", "attender"), (8, "REF", "referrer"), (9, "CON", "consultant"),
                 (17, "ADM", "admitter"))


def _derived_status(pv1: Segment) -> str:
    if pv1.get(45):
        return "finished"
    if pv1.get(44):
        return "in-progress"
    return "unknown"


def map_encounter(state: MapState, pv1: Segment, pv2: Segment | None = None,
                  status: str | None = None, *, prior_location_status: str = "completed"
                  ) -> str | None:
    """Add the Encounter for ``pv1`` (``None`` when PV1 is empty); returns its fullUrl and
    records it in ``state`` as the message's encounter."""
    if all(not pv1.reps(n) for n in range(2, pv1.field_count + 1)):
        return None
    offset = state.ctx.default_utc_offset
    status = status or _derived_status(pv1)
    encounter: dict[str, Any] = {"resourceType": "Encounter", "status": status}
    identifier = next(
        (i for i in (cx_identifier(state, v, "visit") for v in pv1.reps(19)) if i), None
    ) or next((i for i in (cx_identifier(state, v, "visit") for v in pv1.reps(50)) if i), None)
    patient_class = pv1.get(2).upper()
    if identifier is None:
        derived = state.derived_identifier("visit", patient_class, pv1.get(44) or
                                           state.msg.control_id)
        identifier = {"system": derived[0], "value": derived[1]}
        state.warn("derived-id", pv1.loc(19),
                   "PV1-19 (visit number) is empty; the visit is identified by patient, class "
                   "and admit time", "PV1-19（就诊号）为空；以患者、类别和入院时间识别就诊")
    encounter["identifier"] = [identifier]
    if patient_class in _CLASS:
        code, display = _CLASS[patient_class]
        encounter["class"] = {"system": _ACT, "code": code, "display": display}
    else:
        encounter["class"] = {"system": "http://terminology.hl7.org/CodeSystem/v2-0004",
                              "code": patient_class or "U"}
        if patient_class not in ("", "U", "N"):
            state.warn("unmapped-code", pv1.loc(2), f"Unknown patient class {patient_class!r}",
                       f"未知的患者类别 {patient_class!r}")
    admission_type = pv1.value(4)
    if not admission_type.empty:
        encounter["type"] = [cwe_codeable_concept(
            state, admission_type, "http://terminology.hl7.org/CodeSystem/v2-0007")]
    service = pv1.value(10)
    if not service.empty:
        encounter["serviceType"] = cwe_codeable_concept(
            state, service, "http://terminology.hl7.org/CodeSystem/v2-0069")
    encounter["subject"] = state.subject()
    participants = []
    for n, code, display in _PARTICIPANTS:
        for xcn in pv1.reps(n):
            ref = xcn_reference(state, xcn, encounter)
            if ref:
                participants.append({
                    "type": [{"coding": [{"system": _PART, "code": code, "display": display}]}],
                    "individual": ref,
                })
    if participants:
        encounter["participant"] = participants
    period: dict[str, str] = {}
    for bound, n in (("start", 44), ("end", 45)):
        raw = pv1.get(n)
        if raw:
            when = dtm_datetime(raw, offset)
            if when:
                period[bound] = when
            else:
                state.warn("bad-date", pv1.loc(n), f"PV1-{n} is not a date/time; dropped",
                           f"PV1-{n} 不是有效的日期时间，已忽略")
    if period:
        encounter["period"] = period
    if pv2 is not None:
        reason = pv2.value(3)
        if not reason.empty:
            encounter["reasonCode"] = [cwe_codeable_concept(state, reason)]
    hospitalization: dict[str, Any] = {}
    for element, n, table in (("admitSource", 14, "0023"), ("reAdmission", 13, "0092"),
                              ("dischargeDisposition", 36, "0112")):
        coded = pv1.value(n)
        if not coded.empty:
            hospitalization[element] = cwe_codeable_concept(
                state, coded, f"http://terminology.hl7.org/CodeSystem/v2-{table}")
    if hospitalization:
        encounter["hospitalization"] = hospitalization
    locations = []
    current = pl_location(state, pv1.value(3))
    if current:
        here = "completed" if status in ("finished", "cancelled", "entered-in-error") else (
            "planned" if status == "planned" else "active")
        locations.append({"location": current, "status": here})
    prior = pl_location(state, pv1.value(6))
    if prior and prior["reference"] != (current or {}).get("reference"):
        locations.append({"location": prior, "status": prior_location_status})
    pending = pl_location(state, pv1.value(42))
    if pending and pending["reference"] != (current or {}).get("reference"):
        locations.append({"location": pending, "status": "planned"})
    if locations:
        encounter["location"] = locations
    encounter["serviceProvider"] = {"reference": state.ctx.organization}
    key = (identifier["system"], identifier["value"])
    url = (state.builder.put if state.owns_patient else state.builder.ensure)(encounter, key)
    state.encounter = url
    state.encounter_identifier = key
    return url
