"""RXA + RXR (+ ORC) → ``Immunization``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-rxa-to-immunization.html,
ConceptMap-segment-rxr-to-immunization.html).

Identity: ORC-3 (filler order number, the IG's Immunization.identifier), else ORC-2, else
one derived from patient, RXA-3 (administration time) and RXA-5 (vaccine). Status: RXA-21
action ``D`` → entered-in-error; RXA-20 completion (table 0322) CP/PA → completed (PA
sub-potent), RE/NA → not-done. RXA-9 ``00`` (new record) → primarySource. An RXA without
RXA-3 or RXA-5 is a content error (0357 code 101).
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_date,
    dtm_datetime,
    ei_identifier,
    xcn_reference,
)
from huitong.ingest.hl7v2.mapping.datatypes.quantities import cq_quantity
from huitong.ingest.hl7v2.mapping.errors import MappingError
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_immunization"]

_CVX = "http://hl7.org/fhir/sid/cvx"
_FUNCTION = "http://terminology.hl7.org/CodeSystem/v2-0443"


def map_immunization(state: MapState, orc: Segment | None, rxa: Segment,
                     rxr: Segment | None) -> str:
    offset = state.ctx.default_utc_offset
    when = dtm_datetime(rxa.get(3), offset) if rxa.get(3) else None
    if when is None:
        raise MappingError(101, rxa.loc(3), "RXA-3 (administration date/time) is missing or "
                           "not a date", "RXA-3（接种时间）缺失或不是有效日期")
    vaccine = cwe_codeable_concept(state, rxa.value(5), _CVX)
    if vaccine is None:
        raise MappingError(101, rxa.loc(5), "RXA-5 (administered code) is empty",
                           "RXA-5（疫苗代码）为空")
    ident = None
    if orc is not None:
        ident = ei_identifier(state, orc.value(3), "filler-order") or ei_identifier(
            state, orc.value(2), "placer-order")
    if ident is None:
        key = state.derived_identifier("immunization", rxa.get(3), rxa.value(5)[1],
                                       rxa.value(5)[3])
        ident = {"system": key[0], "value": key[1]}
    completion, action = rxa.get(20).upper(), rxa.get(21).upper()
    status = "completed"
    if action == "D":
        status = "entered-in-error"
    elif completion in ("RE", "NA"):
        status = "not-done"
    imm: dict[str, Any] = {
        "resourceType": "Immunization",
        "identifier": [ident],
        "status": status,
    }
    if status == "not-done":
        reason = cwe_codeable_concept(state, rxa.value(18))
        if reason:
            imm["statusReason"] = reason
    imm["vaccineCode"] = vaccine
    imm["patient"] = state.subject()
    if state.encounter:
        imm["encounter"] = {"reference": state.encounter}
    imm["occurrenceDateTime"] = when
    recorded = dtm_datetime(rxa.get(22), offset) if rxa.get(22) else None
    if recorded:
        imm["recorded"] = recorded
    source = rxa.value(9)
    if source[1]:
        imm["primarySource"] = source[1] == "00"
        if source[1] != "00":
            imm["reportOrigin"] = cwe_codeable_concept(state, source)
    manufacturer = rxa.value(17)
    if manufacturer[1] or manufacturer[2]:
        # the organisation is named, not registered: the MVX code stays in the display
        name, mvx = manufacturer[2], manufacturer[1]
        imm["manufacturer"] = {"display": f"{name} ({mvx})" if name and mvx else name or mvx}
    if rxa.get(15):
        imm["lotNumber"] = rxa.get(15)
    expiry = dtm_date(rxa.get(16)) if rxa.get(16) else None
    if expiry and len(expiry) == 10:
        imm["expirationDate"] = expiry
    if rxr is not None:
        route = cwe_codeable_concept(state, rxr.value(1))
        site = cwe_codeable_concept(state, rxr.value(2))
        if site:
            imm["site"] = site
        if route:
            imm["route"] = route
    amount = rxa.get(6)
    if amount and amount != "999":
        dose = cq_quantity(amount, rxa.value(7))
        if dose:
            imm["doseQuantity"] = dose
    if completion == "PA":
        imm["isSubpotent"] = True
    performers = []
    for xcn in rxa.reps(10):
        ref = xcn_reference(state, xcn, imm)
        if ref:
            performers.append({"function": {"coding": [{"system": _FUNCTION, "code": "AP"}]},
                               "actor": ref})
    if orc is not None:
        for xcn in orc.reps(12):
            ref = xcn_reference(state, xcn, imm)
            if ref:
                performers.append({"function": {"coding": [{"system": _FUNCTION,
                                                             "code": "OP"}]}, "actor": ref})
    if performers:
        imm["performer"] = performers
    return state.builder.put(imm, (ident["system"], ident["value"]))
