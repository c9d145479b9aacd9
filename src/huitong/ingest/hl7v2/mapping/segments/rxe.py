"""ORC + RXE (+ RXO, RXR) → ``MedicationRequest``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-rxe-to-medicationrequest.html,
ConceptMap-segment-rxo-to-medicationrequest.html).

RXE-2 give code (else RXO-1) → medication, RXE-3/4 give amount min/max + RXE-5 units →
dose, RXE-7 / RXE-21 instructions → dosage text, RXE-10/11 dispense amount → dispense
quantity, RXE-12 refills → numberOfRepeatsAllowed, RXR-1 route. The order is keyed by
ORC-2/ORC-3 like every order; ORC-5/ORC-1 give the status.
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

__all__ = ["map_medication_request"]

_ORDER_STATUS = {"A": "active", "CA": "cancelled", "CM": "completed", "DC": "stopped",
                 "ER": "entered-in-error", "HD": "on-hold", "IP": "active", "RP": "stopped",
                 "SC": "active"}
_CONTROL_STATUS = {"NW": "active", "OK": "active", "XO": "active", "RE": "active",
                   "SC": "active", "RL": "active", "CA": "cancelled", "CR": "cancelled",
                   "DC": "stopped", "OD": "stopped", "OC": "cancelled", "HD": "on-hold",
                   "OH": "on-hold", "RP": "stopped"}


def map_medication_request(state: MapState, key: OrderKey, orc: Segment | None,
                           rxe: Segment, rxo: Segment | None, rxr: Segment | None,
                           *, owner: bool = True) -> str | None:
    """Add the MedicationRequest (``owner``: the message is the order, so update; else
    create only if absent)."""
    medication = cwe_codeable_concept(state, rxe.value(2))
    if medication is None and rxo is not None:
        medication = cwe_codeable_concept(state, rxo.value(1))
    if medication is None:
        state.warn("dropped", rxe.loc(2), "RXE without a give code; order not mapped",
                   "RXE 缺少给药代码；医嘱未映射")
        return None
    status = "active"
    if orc is not None:
        status = _ORDER_STATUS.get(orc.get(5).upper()) or _CONTROL_STATUS.get(
            orc.get(1).upper(), "active")
    request: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "identifier": key.identifiers(),
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": medication,
        "subject": state.subject(),
    }
    if state.encounter:
        request["encounter"] = {"reference": state.encounter}
    offset = state.ctx.default_utc_offset
    if orc is not None:
        authored = dtm_datetime(orc.get(9), offset) if orc.get(9) else None
        if authored:
            request["authoredOn"] = authored
        requester = next((r for r in (xcn_reference(state, v, request) for v in orc.reps(12))
                          if r), None)
        if requester:
            request["requester"] = requester
    dosage: dict[str, Any] = {}
    texts = [v.text for n in (7, 21) for v in rxe.reps(n) if v.text]
    if texts:
        dosage["text"] = "; ".join(texts)
    if rxr is not None:
        route = cwe_codeable_concept(state, rxr.value(1))
        if route:
            dosage["route"] = route
    low = cq_quantity(rxe.get(3), rxe.value(5))
    high = cq_quantity(rxe.get(4), rxe.value(5))
    if low and high and low["value"] != high["value"]:
        dosage["doseAndRate"] = [{"doseRange": {"low": low, "high": high}}]
    elif low:
        dosage["doseAndRate"] = [{"doseQuantity": low}]
    if dosage:
        request["dosageInstruction"] = [dosage]
    dispense: dict[str, Any] = {}
    quantity = cq_quantity(rxe.get(10), rxe.value(11))
    if quantity:
        dispense["quantity"] = quantity
    if rxe.get(12).isdigit():
        dispense["numberOfRepeatsAllowed"] = int(rxe.get(12))
    if dispense:
        request["dispenseRequest"] = dispense
    return (state.builder.put if owner else state.builder.ensure)(request, key.primary)
