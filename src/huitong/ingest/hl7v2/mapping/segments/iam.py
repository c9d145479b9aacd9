"""IAM (+ IAR) → ``AllergyIntolerance`` (ADT^A60, v2.x adverse reaction information)
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-iam-to-allergyintolerance.html).

IAM-2 allergen type (table 0127), IAM-3 allergen, IAM-4 severity (table 0128), IAM-5
reactions, IAM-6 action code (table 0206: ``D`` delete → verification entered-in-error),
IAM-7 allergy unique identifier (else patient + allergen), IAM-11 onset → onsetDateTime,
IAM-13 reported → recordedDate, IAM-17 clinical status (table 0438) → verificationStatus.
IAR segments (v2.6+) add reactions with their own severity.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    ei_identifier,
)
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.segments.al1 import ALLERGEN_TYPES, CRITICALITY, SEVERITY
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_adverse_reaction"]

_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
# table 0438 → AllergyIntolerance.verificationStatus
_VERIFIED = {"C": "confirmed", "U": "unconfirmed", "P": "unconfirmed", "S": "unconfirmed",
             "D": "refuted", "E": "entered-in-error", "I": "unconfirmed"}


def map_adverse_reaction(state: MapState, iam: Segment, iars: list[Segment]) -> str | None:
    allergen = iam.value(3)
    code = cwe_codeable_concept(state, allergen)
    if code is None:
        state.warn("dropped", iam.loc(3), "IAM without an allergen; segment ignored",
                   "IAM 段缺少过敏原，已忽略")
        return None
    ident = ei_identifier(state, iam.value(7), "allergy")
    if ident is None:
        key = state.derived_identifier("allergy", allergen[1] or allergen.text, allergen[3])
        ident = {"system": key[0], "value": key[1]}
    allergy: dict[str, Any] = {"resourceType": "AllergyIntolerance", "identifier": [ident]}
    verification = "entered-in-error" if iam.get(6).upper() == "D" else _VERIFIED.get(
        iam.get(17).upper())
    if verification != "entered-in-error":
        allergy["clinicalStatus"] = {"coding": [{"system": _CLINICAL, "code": "active"}]}
    if verification:
        allergy["verificationStatus"] = {"coding": [{"system": _VERIFICATION,
                                                     "code": verification}]}
    category, atype = ALLERGEN_TYPES.get(iam.get(2).upper(), (None, None))
    if atype:
        allergy["type"] = atype
    if category:
        allergy["category"] = [category]
    severity = iam.get(4).upper()
    if severity in CRITICALITY:
        allergy["criticality"] = CRITICALITY[severity]
    allergy["code"] = code
    allergy["patient"] = state.subject()
    if state.encounter:
        allergy["encounter"] = {"reference": state.encounter}
    offset = state.ctx.default_utc_offset
    onset = dtm_datetime(iam.get(11), offset) if iam.get(11) else None
    if onset:
        allergy["onsetDateTime"] = onset
    recorded = dtm_datetime(iam.get(13), offset) if iam.get(13) else None
    if recorded:
        allergy["recordedDate"] = recorded
    reactions: list[dict[str, Any]] = []
    manifestations = [c for c in (cwe_codeable_concept(state, v) for v in iam.reps(5)) if c]
    if manifestations:
        reaction: dict[str, Any] = {"manifestation": manifestations}
        if severity in SEVERITY:
            reaction["severity"] = SEVERITY[severity]
        reactions.append(reaction)
    for iar in iars:
        concept = cwe_codeable_concept(state, iar.value(1))
        if concept:
            reaction = {"manifestation": [concept]}
            if iar.get(2).upper() in SEVERITY:
                reaction["severity"] = SEVERITY[iar.get(2).upper()]
            reactions.append(reaction)
    if reactions:
        allergy["reaction"] = reactions
    return state.builder.put(allergy, (ident["system"], ident["value"]))
