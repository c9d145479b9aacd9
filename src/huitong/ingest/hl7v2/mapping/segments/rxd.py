"""RXD (+ RXR) → ``MedicationDispense``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-rxd-to-medicationdispense.html).

RXD-2 dispense/give code → medication, RXD-3 dispensed → whenHandedOver, RXD-4/5 amount →
quantity, RXD-7 prescription number (+ RXD-1 sub-id) → identifier (else the order key),
RXD-9 notes → note, RXD-10 dispensing provider → performer, RXR-1 route → dosage route.
Status ``completed``: an RXD reports a dispense that happened.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    xcn_reference,
)
from huitong.ingest.hl7v2.mapping.datatypes.quantities import cq_quantity
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.segments.orders import OrderKey
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_dispense"]


def map_dispense(state: MapState, key: OrderKey, rxd: Segment, rxr: Segment | None,
                 prescription: str | None) -> str | None:
    medication = cwe_codeable_concept(state, rxd.value(2))
    if medication is None:
        state.warn("dropped", rxd.loc(2), "RXD without a dispense code; not mapped",
                   "RXD 缺少发药代码；未映射")
        return None
    sub = rxd.get(1) or str(rxd.index)
    if rxd.get(7):
        ident = (state.local_system("prescription"), f"{rxd.get(7)}/{sub}")
    else:
        ident = (state.local_system("dispense"), f"{key.key}/{sub}")
    dispense: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "identifier": [{"system": ident[0], "value": ident[1]}],
        "status": "completed",
        "medicationCodeableConcept": medication,
        "subject": state.subject(),
    }
    if state.encounter:
        dispense["context"] = {"reference": state.encounter}
    performers = [{"actor": r} for r in (xcn_reference(state, v, dispense)
                                         for v in rxd.reps(10)) if r]
    if performers:
        dispense["performer"] = performers
    if prescription:
        dispense["authorizingPrescription"] = [{"reference": prescription}]
    quantity = cq_quantity(rxd.get(4), rxd.value(5))
    if quantity:
        dispense["quantity"] = quantity
    handed = dtm_datetime(rxd.get(3), state.ctx.default_utc_offset) if rxd.get(3) else None
    if handed:
        dispense["whenHandedOver"] = handed
    notes = [{"text": v.text} for v in rxd.reps(9) if v.text]
    if notes:
        dispense["note"] = notes
    if rxr is not None:
        route = cwe_codeable_concept(state, rxr.value(1))
        if route:
            dispense["dosageInstruction"] = [{"route": route}]
    return state.builder.put(dispense, ident)
