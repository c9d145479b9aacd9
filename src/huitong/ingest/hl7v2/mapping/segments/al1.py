"""AL1 → ``AllergyIntolerance``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-al1-to-allergyintolerance.html).

AL1-2 allergen type (table 0127) → category/type, AL1-3 allergen → code, AL1-4 severity
(table 0128) → reaction.severity, AL1-5 reactions → reaction.manifestation, AL1-6
identification date → onsetDateTime. Keyed by patient + allergen, so the same allergy sent
again (or by the next ADT) updates one resource.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import cwe_codeable_concept, dtm_datetime
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["ALLERGEN_TYPES", "CRITICALITY", "SEVERITY", "map_allergy"]

_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
# table 0127 → (category, type)
ALLERGEN_TYPES: dict[str, tuple[str | None, str | None]] = {
    "DA": ("medication", "allergy"), "FA": ("food", "allergy"),
    "EA": ("environment", "allergy"), "AA": ("environment", "allergy"),
    "PA": ("environment", "allergy"), "LA": ("environment", "allergy"),
    "MA": (None, "allergy"), "MC": (None, None),
    "DI": ("medication", "intolerance"), "FI": ("food", "intolerance"),
    "EI": ("environment", "intolerance"),
}
SEVERITY = {"SV": "severe", "MO": "moderate", "MI": "mild"}
CRITICALITY = {"SV": "high", "MO": "low", "MI": "low"}


def map_allergy(state: MapState, al1: Segment) -> str | None:
    code = cwe_codeable_concept(state, al1.value(3))
    if code is None:
        state.warn("dropped", al1.loc(3), "AL1 without an allergen; segment ignored",
                   "AL1 段缺少过敏原，已忽略")
        return None
    allergen = al1.value(3)
    identifier = state.derived_identifier("allergy", allergen[1] or allergen.text, allergen[3])
    allergy: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "identifier": [{"system": identifier[0], "value": identifier[1]}],
        "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
        "code": code,
        "patient": state.subject(),
    }
    category, atype = ALLERGEN_TYPES.get(al1.get(2).upper(), (None, None))
    if category:
        allergy["category"] = [category]
    if atype:
        allergy["type"] = atype
    severity = al1.get(4).upper()
    if severity in CRITICALITY:
        allergy["criticality"] = CRITICALITY[severity]
    manifestations = [c for c in (cwe_codeable_concept(state, v) for v in al1.reps(5)) if c]
    if manifestations:
        reaction: dict[str, Any] = {"manifestation": manifestations}
        if severity in SEVERITY:
            reaction["severity"] = SEVERITY[severity]
        allergy["reaction"] = [reaction]
    onset = dtm_datetime(al1.get(6), state.ctx.default_utc_offset) if al1.get(6) else None
    if onset:
        allergy["onsetDateTime"] = onset
    if state.encounter:
        allergy["encounter"] = {"reference": state.encounter}
    return state.builder.put(allergy, identifier)
