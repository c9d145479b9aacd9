"""RF1 (+ PRD) → ``ServiceRequest`` for a referral
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-rf1-to-servicerequest.html,
ConceptMap-segment-prd-to-practitioner.html).

RF1-6 originating referral id (else RF1-11 external id) → identifier, RF1-1 status (table
0283: A accepted, P pending → active; R rejected → revoked; E expired → completed), RF1-2
priority (table 0280), RF1-3 type → code when no OBR names the service, RF1-7 effective
date → authoredOn, RF1-10 reason → reasonCode. PRD with role RP (referring) → requester,
RT (referred to) → performer, as contained practitioners (a PRD names, it does not register).
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    ei_identifier,
    xpn_name,
)
from huitong.ingest.hl7v2.mapping.errors import MappingError
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_referral"]

_STATUS = {"A": "active", "P": "active", "R": "revoked", "E": "completed"}
_PRIORITY = {"S": "stat", "A": "asap", "R": "routine"}
_REFERRAL = {"coding": [{"system": "http://snomed.info/sct", "code": "3457005",
                         "display": "Patient referral"}]}


def _provider(prd: Segment, request: dict[str, Any]) -> dict[str, Any] | None:
    name = next((n for n in (xpn_name(v) for v in prd.reps(2)) if n), None)
    if name is None:
        return None
    contained = request.setdefault("contained", [])
    pid = f"prd{len(contained) + 1}"
    contained.append({"resourceType": "Practitioner", "id": pid, "name": [name]})
    display = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")])
    return {"reference": f"#{pid}", "display": display.strip()}


def map_referral(state: MapState, rf1: Segment, prds: list[Segment], obr: Segment | None,
                 reasons: list[str], supporting: list[str]) -> str:
    ident = ei_identifier(state, rf1.value(6), "referral") or ei_identifier(
        state, rf1.value(11), "referral")
    if ident is None:
        raise MappingError(101, rf1.loc(6), "RF1-6 (originating referral identifier) is empty",
                           "RF1-6（转诊编号）为空")
    code = (cwe_codeable_concept(state, obr.value(4)) if obr is not None else None) or (
        cwe_codeable_concept(state, rf1.value(3))) or {"text": "referral"}
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": [ident],
        "status": _STATUS.get(rf1.get(1).upper(), "active"),
        "intent": "order",
        "category": [_REFERRAL],
    }
    priority = _PRIORITY.get(rf1.get(2).upper())
    if priority:
        request["priority"] = priority
    request["code"] = code
    request["subject"] = state.subject()
    if state.encounter:
        request["encounter"] = {"reference": state.encounter}
    authored = dtm_datetime(rf1.get(7), state.ctx.default_utc_offset) if rf1.get(7) else None
    if authored:
        request["authoredOn"] = authored
    for prd in prds:
        role = prd.get(1).upper()
        if role in ("RP", "RT"):
            ref = _provider(prd, request)
            if ref and role == "RP" and "requester" not in request:
                request["requester"] = ref
            elif ref and role == "RT":
                request.setdefault("performer", []).append(ref)
    reason = cwe_codeable_concept(state, rf1.value(10))
    if reason:
        request["reasonCode"] = [reason]
    if reasons:
        request["reasonReference"] = [{"reference": r} for r in reasons]
    if supporting:
        request["supportingInfo"] = [{"reference": s} for s in supporting]
    return state.builder.put(request, (ident["system"], ident["value"]))
