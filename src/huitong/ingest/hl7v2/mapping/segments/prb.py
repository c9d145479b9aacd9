"""PRB → ``Condition`` (problem-list item)
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-prb-to-condition.html).

PRB-1 action code (table 0287): AD add, UP update, DE delete (→ verificationStatus
entered-in-error, no clinical status, as the FHIR invariant con-5 requires); PRB-3 problem
→ code; PRB-4 problem instance id → identifier (else derived from PRB-3); PRB-7 action
date → recordedDate; PRB-9 actual resolution → abatement (clinical status resolved);
PRB-16 onset → onsetDateTime.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    ei_identifier,
)
from huitong.ingest.hl7v2.mapping.errors import MappingError
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_problem"]

_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"


def map_problem(state: MapState, prb: Segment, notes: list[dict[str, Any]]) -> str:
    code = cwe_codeable_concept(state, prb.value(3))
    if code is None:
        raise MappingError(101, prb.loc(3), "PRB-3 (problem id) is empty",
                           "PRB-3（问题标识）为空")
    ident = ei_identifier(state, prb.value(4), "problem")
    if ident is None:
        key = state.derived_identifier("problem", prb.value(3)[1] or prb.value(3).text,
                                       prb.value(3)[3])
        ident = {"system": key[0], "value": key[1]}
    offset = state.ctx.default_utc_offset
    condition: dict[str, Any] = {"resourceType": "Condition", "identifier": [ident]}
    resolved = dtm_datetime(prb.get(9), offset) if prb.get(9) else None
    if prb.get(1).upper() == "DE":
        condition["verificationStatus"] = {"coding": [{"system": _VERIFICATION,
                                                       "code": "entered-in-error"}]}
    else:
        condition["clinicalStatus"] = {"coding": [{
            "system": _CLINICAL, "code": "resolved" if resolved else "active"}]}
    condition["category"] = [{"coding": [{"system": _CATEGORY, "code": "problem-list-item",
                                          "display": "Problem List Item"}]}]
    condition["code"] = code
    condition["subject"] = state.subject()
    if state.encounter:
        condition["encounter"] = {"reference": state.encounter}
    onset = dtm_datetime(prb.get(16), offset) if prb.get(16) else None
    if onset:
        condition["onsetDateTime"] = onset
    if resolved:
        condition["abatementDateTime"] = resolved
    recorded = dtm_datetime(prb.get(7), offset) if prb.get(7) else None
    if recorded:
        condition["recordedDate"] = recorded
    if notes:
        condition["note"] = notes
    return state.builder.put(condition, (ident["system"], ident["value"]))
