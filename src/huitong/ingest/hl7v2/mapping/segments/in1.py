"""IN1 → ``Coverage``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-in1-to-coverage.html).

IN1-2 plan id → class (plan), IN1-3/IN1-4 insurance company → payor (a contained
Organization: the message names the payer but is not its registry), IN1-12/13 plan
effective/expiration → period, IN1-17 insured's relationship → relationship, IN1-36
policy number (else IN1-2 + patient) → identifier and subscriberId. Coverage in Chinese
hospitals is mostly social medical insurance (医保), keyed the same way.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    cx_identifier,
    dtm_date,
)
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_coverage"]

_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


def map_coverage(state: MapState, in1: Segment) -> str | None:
    plan, company_id, company = in1.value(2), in1.value(3), in1.get(4)
    policy = in1.get(36)
    if plan.empty and company_id.empty and not company and not policy:
        return None
    if policy:
        ident = (state.local_system("policy"), policy)
    else:
        ident = state.derived_identifier("coverage", plan[1], company_id[1], company,
                                         in1.get(1))
    payor: dict[str, Any] = {"resourceType": "Organization", "id": "payor"}
    payor_id = cx_identifier(state, company_id, "payor")
    if payor_id:
        payor["identifier"] = [payor_id]
    payor["name"] = company or company_id[1] or plan[1] or "unknown"
    coverage: dict[str, Any] = {
        "resourceType": "Coverage",
        "contained": [payor],
        "identifier": [{"system": ident[0], "value": ident[1]}],
        "status": "active",
        "beneficiary": state.subject(),
        "payor": [{"reference": "#payor", "display": payor["name"]}],
    }
    if policy:
        coverage["subscriberId"] = policy
    if not plan.empty:
        coverage["class"] = [{
            "type": {"coding": [{"system": _CLASS, "code": "plan"}]},
            "value": plan[1] or plan.text,
            **({"name": plan[2]} if plan[2] else {}),
        }]
    period = {k: v for k, v in (("start", dtm_date(in1.get(12))), ("end", dtm_date(in1.get(13))))
              if v}
    if period:
        coverage["period"] = period
    relationship = in1.value(17)
    if not relationship.empty:
        coverage["relationship"] = cwe_codeable_concept(
            state, relationship, "http://terminology.hl7.org/CodeSystem/v2-0063")
    return state.builder.put(coverage, ident)
