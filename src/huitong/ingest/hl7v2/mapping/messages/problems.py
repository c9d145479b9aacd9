"""PPR^PC1/PC2/PC3 (problem add / update / delete) → ``Condition`` per PRB
(https://build.fhir.org/ig/HL7/v2-to-fhir/message_maps.html, PPR_PC1)."""

from __future__ import annotations

from huitong.ingest.hl7v2.mapping.message import Segment, V2Message
from huitong.ingest.hl7v2.mapping.messages.groups import map_patient_group, warn_skipped
from huitong.ingest.hl7v2.mapping.segments.nte import nte_annotations
from huitong.ingest.hl7v2.mapping.segments.prb import map_problem
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_ppr"]

_HANDLED = {"PID", "PD1", "PV1", "PV2", "PRB", "NTE"}


def map_ppr(state: MapState, msg: V2Message) -> None:
    map_patient_group(state, msg)
    problems: list[tuple[Segment, list[Segment]]] = []
    for seg in msg.segments:
        if seg.id == "PRB":
            problems.append((seg, []))
        elif seg.id == "NTE" and problems:
            problems[-1][1].append(seg)
    for prb, notes in problems:
        map_problem(state, prb, nte_annotations(notes))
    warn_skipped(state, msg, _HANDLED)
