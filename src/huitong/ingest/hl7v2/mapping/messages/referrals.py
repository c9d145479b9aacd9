"""REF^I12 (referral) and REF^I14 (referral status) → a referral ``ServiceRequest`` with
its diagnoses (``reasonReference``), and the allergies, procedures, coverage and results
the referral carries (https://build.fhir.org/ig/HL7/v2-to-fhir/message_maps.html)."""

from __future__ import annotations

from huitong.ingest.hl7v2.mapping.errors import MappingError
from huitong.ingest.hl7v2.mapping.message import V2Message
from huitong.ingest.hl7v2.mapping.messages.groups import (
    map_patient_group,
    order_groups,
    warn_skipped,
)
from huitong.ingest.hl7v2.mapping.segments.al1 import map_allergy
from huitong.ingest.hl7v2.mapping.segments.dg1 import map_diagnosis
from huitong.ingest.hl7v2.mapping.segments.in1 import map_coverage
from huitong.ingest.hl7v2.mapping.segments.nte import nte_annotations
from huitong.ingest.hl7v2.mapping.segments.obx import ObservationScope, map_observation
from huitong.ingest.hl7v2.mapping.segments.pr1 import map_procedure
from huitong.ingest.hl7v2.mapping.segments.rf1 import map_referral
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_ref"]

_HANDLED = {"PID", "PD1", "NK1", "PV1", "PV2", "RF1", "PRD", "DG1", "AL1", "PR1", "IN1",
            "OBR", "OBX", "NTE", "AUT"}


def map_ref(state: MapState, msg: V2Message) -> None:
    rf1 = msg.first("RF1")
    if rf1 is None:
        raise MappingError(100, "RF1", "REF message without RF1", "REF 消息缺少 RF1 段")
    map_patient_group(state, msg)
    reasons: list[str] = []
    for seg in msg.segments:
        if seg.id == "DG1":
            mapped = map_diagnosis(state, seg)
            if mapped:
                reasons.append(mapped[0])
        elif seg.id == "AL1":
            map_allergy(state, seg)
        elif seg.id == "PR1":
            map_procedure(state, seg)
        elif seg.id == "IN1":
            map_coverage(state, seg)
    groups, _ = order_groups(msg.segments)
    referral_key = f"referral:{rf1.get(6)}|{rf1.get(6, 2)}"
    supporting: list[str | None] = []
    for n, group in enumerate(groups, start=1):
        scope = ObservationScope(f"{referral_key}/OBR{n}")
        supporting += [map_observation(state, item.obx, scope, nte_annotations(item.notes))
                       for item in group.observations]
    obr = groups[0].obr if groups else None
    map_referral(state, rf1, msg.all("PRD"), obr, reasons, [s for s in supporting if s])
    warn_skipped(state, msg, _HANDLED)
