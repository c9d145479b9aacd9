"""PR1 → ``Procedure``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-pr1-to-procedure.html).

PR1-3 procedure code, PR1-5 date/time → performedDateTime, PR1-19 identifier (else derived
from visit, code and time), status ``completed`` (a PR1 reports a procedure done).
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    ei_identifier,
)
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_procedure"]


def map_procedure(state: MapState, pr1: Segment) -> str | None:
    code = cwe_codeable_concept(state, pr1.value(3))
    if code is None and pr1.get(4):
        code = {"text": pr1.get(4)}
    if code is None:
        state.warn("dropped", pr1.loc(3), "PR1 without a procedure code; segment ignored",
                   "PR1 段缺少操作代码，已忽略")
        return None
    ident = ei_identifier(state, pr1.value(19), "procedure")
    if ident is None:
        visit = "|".join(state.encounter_identifier or ("", ""))
        key = state.derived_identifier("procedure", visit, pr1.value(3)[1] or pr1.get(4),
                                       pr1.get(5))
        ident = {"system": key[0], "value": key[1]}
    procedure: dict[str, Any] = {
        "resourceType": "Procedure",
        "identifier": [ident],
        "status": "completed",
        "code": code,
        "subject": state.subject(),
    }
    if state.encounter:
        procedure["encounter"] = {"reference": state.encounter}
    when = dtm_datetime(pr1.get(5), state.ctx.default_utc_offset) if pr1.get(5) else None
    if when:
        procedure["performedDateTime"] = when
    return state.builder.put(procedure, (ident["system"], ident["value"]))
