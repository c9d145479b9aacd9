"""VXU^V04 → ``Immunization`` per ORC/RXA (+ RXR), with the OBX that follow an RXA as
Observations ``partOf`` it (funding eligibility, VIS dates…)
(https://build.fhir.org/ig/HL7/v2-to-fhir/message_maps.html, VXU_V04).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from huitong.ingest.hl7v2.mapping.message import Segment, V2Message
from huitong.ingest.hl7v2.mapping.messages.groups import map_patient_group, warn_skipped
from huitong.ingest.hl7v2.mapping.segments.in1 import map_coverage
from huitong.ingest.hl7v2.mapping.segments.nte import nte_annotations
from huitong.ingest.hl7v2.mapping.segments.obx import ObservationScope, map_observation
from huitong.ingest.hl7v2.mapping.segments.rxa import map_immunization
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_vxu"]

_HANDLED = {"PID", "PD1", "NK1", "PV1", "PV2", "ORC", "RXA", "RXR", "OBX", "NTE", "IN1"}


@dataclass
class _Administration:
    orc: Segment | None
    rxa: Segment
    rxr: Segment | None = None
    observations: list[tuple[Segment, list[Segment]]] = field(default_factory=list)


def map_vxu(state: MapState, msg: V2Message) -> None:
    map_patient_group(state, msg)
    for seg in msg.all("IN1"):
        map_coverage(state, seg)
    groups: list[_Administration] = []
    orc: Segment | None = None
    for seg in msg.segments:
        if seg.id == "ORC":
            orc = seg
        elif seg.id == "RXA":
            groups.append(_Administration(orc, seg))
            orc = None
        elif seg.id == "RXR" and groups and groups[-1].rxr is None:
            groups[-1].rxr = seg
        elif seg.id == "OBX" and groups:
            groups[-1].observations.append((seg, []))
        elif seg.id == "NTE" and groups and groups[-1].observations:
            groups[-1].observations[-1][1].append(seg)
    for group in groups:
        ref = map_immunization(state, group.orc, group.rxa, group.rxr)
        if not group.observations:
            continue
        imm = state.builder.resource(ref)
        assert imm is not None
        ident = imm["identifier"][0]
        scope = ObservationScope(f"immunization:{ident['system']}|{ident['value']}")
        for obx, notes in group.observations:
            obs_ref = map_observation(state, obx, scope, nte_annotations(notes))
            obs = state.builder.resource(obs_ref) if obs_ref else None
            if obs is not None:
                obs["partOf"] = [{"reference": ref}]
    warn_skipped(state, msg, _HANDLED)
