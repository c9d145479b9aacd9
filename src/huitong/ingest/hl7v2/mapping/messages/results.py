"""ORU^R01 and OUL^R22/R23/R24 → ``DiagnosticReport`` + ``Observation`` (+ ``Specimen``,
and the ``ServiceRequest`` they answer, created only when absent)
(https://build.fhir.org/ig/HL7/v2-to-fhir/message_maps.html, ORU_R01, OUL_R22).

One DiagnosticReport per OBR, its results the OBX of that OBR (and of its SPM groups).
OBX before any OBR are patient-level observations keyed by the message.
"""

from __future__ import annotations

from huitong.ingest.hl7v2.mapping.datatypes import dtm_datetime
from huitong.ingest.hl7v2.mapping.message import V2Message
from huitong.ingest.hl7v2.mapping.messages.groups import (
    map_patient_group,
    order_groups,
    warn_skipped,
)
from huitong.ingest.hl7v2.mapping.segments.nte import nte_annotations
from huitong.ingest.hl7v2.mapping.segments.obx import ObservationScope, map_observation
from huitong.ingest.hl7v2.mapping.segments.orders import (
    map_report,
    map_service_request,
    order_key,
)
from huitong.ingest.hl7v2.mapping.segments.spm import map_specimen
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_results"]

_LAB_SECTIONS = {"LAB", "CH", "HM", "MB", "SR", "CP", "BLB", "CG", "HLA", "IMM", "MCB",
                 "MYC", "PAR", "SP", "TX", "URN", "VR", "VIR", "SE", "CUS", "LAB1"}
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_HANDLED = {"PID", "PD1", "NK1", "PV1", "PV2", "ORC", "OBR", "OBX", "NTE", "SPM", "TXA"}


def map_results(state: MapState, msg: V2Message) -> None:
    map_patient_group(state, msg)
    groups, loose = order_groups(msg.segments)
    if loose:
        scope = ObservationScope(f"message:{msg.msh.get(4)}|{msg.control_id}")
        for item in loose:
            map_observation(state, item.obx, scope, nte_annotations(item.notes))
    offset = state.ctx.default_utc_offset
    for group in groups:
        obr = group.obr
        if obr is None:
            state.warn("dropped", group.orc.loc() if group.orc else "ORC",
                       "An order without OBR carries no result; ignored",
                       "没有 OBR 的医嘱不含结果，已忽略")
            continue
        key = order_key(state, group.orc, obr)
        specimens = [s for s in (map_specimen(state, item.spm, key.key)
                                 for item in group.specimens) if s]
        section = obr.get(24).upper()
        category = None
        if section in _LAB_SECTIONS or msg.message_code == "OUL":
            category = {"coding": [{"system": _CATEGORY, "code": "laboratory"}]}
        elif section in ("RAD", "RX", "CT", "US", "NMR", "NMS", "XRC"):
            category = {"coding": [{"system": _CATEGORY, "code": "imaging"}]}
        effective = dtm_datetime(obr.get(7), offset) if obr.get(7) else None
        results: list[str | None] = []
        scope = ObservationScope(key.key, effective, specimens[0] if specimens else None,
                                 category)
        for item in group.observations:
            results.append(map_observation(state, item.obx, scope,
                                           nte_annotations(item.notes)))
        for spec_item, spec_ref in zip(group.specimens, specimens, strict=False):
            spec_scope = ObservationScope(f"{key.key}/SPM{spec_item.spm.get(1) or 1}",
                                          effective, spec_ref, category)
            for item in spec_item.observations:
                results.append(map_observation(state, item.obx, spec_scope,
                                               nte_annotations(item.notes)))
        final = obr.get(25).upper() in ("F", "C")
        request = map_service_request(
            state, key, group.orc, obr, owner=False, specimens=specimens,
            status="completed" if final else None,
        )
        map_report(state, key, obr, [r for r in results if r], request=request,
                   specimens=specimens)
    warn_skipped(state, msg, _HANDLED)
