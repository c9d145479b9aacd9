"""SPM → ``Specimen``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-spm-to-specimen.html).

SPM-2 specimen id (EIP: placer ^ filler) → identifier, SPM-4 type, SPM-7 collection method,
SPM-8 source site → collection.bodySite, SPM-12 amount, SPM-17 collection date/time (DR) →
collection.collected[x], SPM-18 received → receivedTime. Without SPM-2 the specimen is
identified by its order and SPM-1.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    dtm_instant,
    hd_system,
)
from huitong.ingest.hl7v2.mapping.datatypes.quantities import cq_quantity
from huitong.ingest.hl7v2.mapping.message import Segment, Value
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_specimen"]


def map_specimen(state: MapState, spm: Segment, order_key: str) -> str | None:
    eip = spm.value(2)
    placer, filler = eip.part(1), eip.part(2)
    identifiers = []
    for ei, kind in ((filler, "specimen"), (placer, "specimen-placer")):
        if ei[1]:
            identifiers.append({
                "system": hd_system(state, Value(ei.parts[1:4]), kind), "value": ei[1]})
    if identifiers:
        ident = (identifiers[0]["system"], identifiers[0]["value"])
    else:
        ident = (state.local_system("specimen"), f"{order_key}/{spm.get(1) or spm.index}")
        identifiers = [{"system": ident[0], "value": ident[1]}]
    specimen: dict[str, Any] = {"resourceType": "Specimen", "identifier": identifiers}
    stype = cwe_codeable_concept(state, spm.value(4))
    if stype:
        specimen["type"] = stype
    specimen["subject"] = state.subject()
    offset = state.ctx.default_utc_offset
    received = dtm_instant(spm.get(18), offset) if spm.get(18) else None
    if received:
        specimen["receivedTime"] = received
    collection: dict[str, Any] = {}
    window = spm.value(17)
    start = dtm_datetime(window[1], offset) if window[1] else None
    end = dtm_datetime(window[2], offset) if window[2] else None
    if start and end:
        collection["collectedPeriod"] = {"start": start, "end": end}
    elif start:
        collection["collectedDateTime"] = start
    amount = spm.value(12)
    if not amount.empty:
        q = cq_quantity(amount[1], amount.part(2))
        if q:
            collection["quantity"] = {k: v for k, v in q.items() if k != "comparator"}
    for key, n in (("method", 7), ("bodySite", 8)):
        concept = cwe_codeable_concept(state, spm.value(n))
        if concept:
            collection[key] = concept
    if collection:
        specimen["collection"] = collection
    return state.builder.put(specimen, ident)
