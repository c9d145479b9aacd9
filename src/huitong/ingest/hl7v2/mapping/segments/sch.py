"""SCH (+ TQ1, AIS, AIG, AIL, AIP, NTE) → ``Appointment``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-sch-to-appointment.html,
ConceptMap-segment-ais-to-appointment.html).

SCH-2 filler appointment id (else SCH-1 placer) → identifier; the trigger event gives the
status (S12–S14 booked, S15/S16 cancelled, S17 entered-in-error, S26 noshow); SCH-7 reason,
SCH-8 appointment type, SCH-9/10 duration; start/end from TQ1-7/8, else SCH-11 (TQ, older
versions), else the first AIS-4 start + AIS-7 duration (minutes). Participants: the patient,
every AIP person (XCN) and AIL location (PL); AIG general resources are kept by name.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    ei_identifier,
    pl_location,
    xcn_reference,
)
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.segments.nte import nte_annotations
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["APPOINTMENT_STATUS", "map_appointment"]

APPOINTMENT_STATUS = {"S12": "booked", "S13": "booked", "S14": "booked", "S15": "cancelled",
                      "S16": "cancelled", "S17": "entered-in-error", "S26": "noshow"}


def _instant(value: str, offset: str) -> str | None:
    dt = dtm_datetime(value, offset) if value else None
    return dt if dt and "T" in dt else None


def map_appointment(state: MapState, sch: Segment, event: str, segments: list[Segment]
                    ) -> str:
    offset = state.ctx.default_utc_offset
    ident = ei_identifier(state, sch.value(2), "appointment") or ei_identifier(
        state, sch.value(1), "appointment-placer")
    if ident is None:
        key = state.derived_identifier("appointment", sch.get(11, 4), state.msg.control_id)
        ident = {"system": key[0], "value": key[1]}
        state.warn("derived-id", sch.loc(2), "SCH-1 and SCH-2 are empty; the appointment "
                   "is identified by this message", "SCH-1 与 SCH-2 均为空；以本消息识别预约")
    appt: dict[str, Any] = {"resourceType": "Appointment", "identifier": [ident],
                            "status": APPOINTMENT_STATUS.get(event, "booked")}
    appt_type = cwe_codeable_concept(state, sch.value(8),
                                     "http://terminology.hl7.org/CodeSystem/v2-0277")
    ais = [s for s in segments if s.id == "AIS"]
    services = [c for c in (cwe_codeable_concept(state, s.value(3)) for s in ais) if c]
    if services:
        appt["serviceType"] = services
    if appt_type:
        appt["appointmentType"] = appt_type
    reason = cwe_codeable_concept(state, sch.value(7))
    if reason:
        appt["reasonCode"] = [reason]
    tq1 = next((s for s in segments if s.id == "TQ1"), None)
    start = end = None
    if tq1 is not None:
        start, end = _instant(tq1.get(7), offset), _instant(tq1.get(8), offset)
    if start is None:
        start, end = _instant(sch.get(11, 4), offset), _instant(sch.get(11, 5), offset)
    if start is None and ais:
        start = _instant(ais[0].get(4), offset)
        minutes = ais[0].get(7)
        if start and minutes.isdigit() and ais[0].get(8, 1).upper() in ("", "MIN"):
            end = (datetime.fromisoformat(start) + timedelta(minutes=int(minutes))
                   ).isoformat()
    if start:
        appt["start"] = start
    if end:
        appt["end"] = end
    duration = sch.get(9)
    if duration.isdigit() and sch.get(10, 1).upper() in ("", "MIN", "M"):
        appt["minutesDuration"] = max(1, int(duration))
    comments = nte_annotations([s for s in segments if s.id == "NTE"][:1])
    if comments:
        appt["comment"] = comments[0]["text"]
    participants: list[dict[str, Any]] = []
    if state.patient:
        participants.append({"actor": {"reference": state.patient}, "status": "accepted"})
    for seg in segments:
        ref = None
        if seg.id == "AIP":
            ref = next((r for r in (xcn_reference(state, v, appt) for v in seg.reps(3)) if r),
                       None)
        elif seg.id == "AIL":
            ref = pl_location(state, seg.value(3))
        elif seg.id == "AIG":
            name = seg.value(3)
            if not name.empty:
                ref = {"display": name[2] or name[1]}
        if ref and ref not in [p["actor"] for p in participants]:
            participants.append({"actor": ref, "status": "accepted"})
    if not participants:
        participants.append({"status": "needs-action", "type": [{"text": "unknown"}]})
    appt["participant"] = participants
    return state.builder.put(appt, (ident["system"], ident["value"]))
