"""DG1 → ``Condition`` (encounter-diagnosis)
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-dg1-to-condition.html).

DG1-3 diagnosis code, DG1-5 diagnosis date/time → onsetDateTime, DG1-6 type (table 0052:
A admitting, W working, F final) → Encounter.diagnosis.use, DG1-16 clinician → asserter,
DG1-20 diagnosis identifier → identifier (else one derived from visit and code).
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    ei_identifier,
    xcn_reference,
)
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_diagnosis"]

_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
_USE = {"A": ("AD", "Admission diagnosis"), "F": ("DD", "Discharge diagnosis"),
        "W": ("CC", "Chief complaint")}


def map_diagnosis(state: MapState, dg1: Segment) -> tuple[str, dict[str, Any]] | None:
    """The Condition's fullUrl and the ``Encounter.diagnosis`` element pointing at it."""
    code = cwe_codeable_concept(state, dg1.value(3))
    if code is None and dg1.get(4):
        code = {"text": dg1.get(4)}  # DG1-4, the free-text description of older versions
    if code is None:
        state.warn("dropped", dg1.loc(3), "DG1 without a diagnosis code; segment ignored",
                   "DG1 段缺少诊断代码，已忽略")
        return None
    ident = ei_identifier(state, dg1.value(20), "diagnosis")
    if ident is None:
        visit = "|".join(state.encounter_identifier or ("", ""))
        key = state.derived_identifier("diagnosis", visit, dg1.value(3)[1] or dg1.get(4),
                                       dg1.get(6))
        ident = {"system": key[0], "value": key[1]}
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "identifier": [ident],
        "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
        "category": [{"coding": [{"system": _CATEGORY, "code": "encounter-diagnosis",
                                  "display": "Encounter Diagnosis"}]}],
        "code": code,
        "subject": state.subject(),
    }
    if state.encounter:
        condition["encounter"] = {"reference": state.encounter}
    onset = dtm_datetime(dg1.get(5), state.ctx.default_utc_offset) if dg1.get(5) else None
    if onset:
        condition["onsetDateTime"] = onset
    asserter = next((r for r in (xcn_reference(state, v, condition) for v in dg1.reps(16))
                     if r), None)
    if asserter:
        condition["asserter"] = asserter
    ref = state.builder.put(condition, (ident["system"], ident["value"]))
    diagnosis: dict[str, Any] = {"condition": {"reference": ref}}
    use = _USE.get(dg1.get(6).upper())
    if use:
        diagnosis["use"] = {"coding": [{"system": _ROLE, "code": use[0], "display": use[1]}]}
    if dg1.get(15).isdigit():
        diagnosis["rank"] = max(1, int(dg1.get(15)))
    return ref, diagnosis
