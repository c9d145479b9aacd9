"""SIU^S12–S17, S26 → ``Appointment`` (https://build.fhir.org/ig/HL7/v2-to-fhir/message_maps.html,
SIU_S12). The patient group is optional in SIU; its PV1 gives the visit."""

from __future__ import annotations

from huitong.ingest.hl7v2.mapping.errors import MappingError
from huitong.ingest.hl7v2.mapping.message import V2Message
from huitong.ingest.hl7v2.mapping.messages.groups import map_patient_group, warn_skipped
from huitong.ingest.hl7v2.mapping.segments.sch import map_appointment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_siu"]

_HANDLED = {"PID", "PD1", "PV1", "PV2", "SCH", "TQ1", "NTE", "AIS", "AIG", "AIL", "AIP"}


def map_siu(state: MapState, msg: V2Message) -> None:
    sch = msg.first("SCH")
    if sch is None:
        raise MappingError(100, "SCH", "SIU message without SCH", "SIU 消息缺少 SCH 段")
    map_patient_group(state, msg, required=False)
    map_appointment(state, sch, msg.trigger_event, msg.segments)
    warn_skipped(state, msg, _HANDLED)
