"""MDM^T01–T11 → ``DocumentReference`` from TXA and the OBX that carry the document
(https://build.fhir.org/ig/HL7/v2-to-fhir/message_maps.html, MDM_T02)."""

from __future__ import annotations

from huitong.ingest.hl7v2.mapping.errors import MappingError
from huitong.ingest.hl7v2.mapping.message import V2Message
from huitong.ingest.hl7v2.mapping.messages.groups import map_patient_group, warn_skipped
from huitong.ingest.hl7v2.mapping.segments.txa import map_document
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_mdm"]

_HANDLED = {"PID", "PD1", "PV1", "PV2", "TXA", "OBX", "NTE", "ORC", "OBR"}


def map_mdm(state: MapState, msg: V2Message) -> None:
    map_patient_group(state, msg)
    txa = msg.first("TXA")
    if txa is None:
        raise MappingError(100, "TXA", "MDM message without TXA", "MDM 消息缺少 TXA 段")
    at = msg.segments.index(txa)
    obxs = [s for s in msg.segments[at + 1:] if s.id == "OBX"]
    map_document(state, txa, obxs, msg.trigger_event)
    warn_skipped(state, msg, _HANDLED)
