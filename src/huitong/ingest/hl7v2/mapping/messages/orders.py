"""ORM^O01, OML^O21 and OMG^O19 → ``ServiceRequest`` per ORC/OBR (+ ``Specimen``, the OBX sent
with the order as ``supportingInfo`` Observations, its DG1 as ``reasonReference`` Conditions)
(https://build.fhir.org/ig/HL7/v2-to-fhir/message_maps.html, OML_O21).

The message is the order itself, so its ServiceRequests are conditional updates keyed by the
placer order number. An ORC whose detail is not an OBR (ODS diet, RQD supply, RXO pharmacy
in an ORM) is not a service request: it is reported as a warning and left out.
"""

from __future__ import annotations

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
from huitong.ingest.hl7v2.mapping.segments.orders import map_service_request, order_key
from huitong.ingest.hl7v2.mapping.segments.spm import map_specimen
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_orders"]

_HANDLED = {"PID", "PD1", "NK1", "PV1", "PV2", "ORC", "OBR", "OBX", "NTE", "SPM", "AL1",
            "IN1", "DG1"}


def map_orders(state: MapState, msg: V2Message) -> None:
    map_patient_group(state, msg)
    for seg in msg.segments:
        if seg.id == "AL1":
            map_allergy(state, seg)
        elif seg.id == "IN1":
            map_coverage(state, seg)
    groups, _ = order_groups(msg.segments, frozenset({"DG1"}))
    for group in groups:
        if group.obr is None:
            state.warn("dropped", group.orc.loc() if group.orc else "ORC",
                       "An order without OBR (diet, supply or pharmacy detail) is not mapped",
                       "不含 OBR 的医嘱（饮食、物资或药品明细）未映射")
            continue
        key = order_key(state, group.orc, group.obr)
        specimens = [s for s in (map_specimen(state, item.spm, key.key)
                                 for item in group.specimens) if s]
        scope = ObservationScope(key.key, None, specimens[0] if specimens else None)
        supporting = [map_observation(state, item.obx, scope, nte_annotations(item.notes))
                      for item in group.observations]
        for spec_item, spec_ref in zip(group.specimens, specimens, strict=False):
            spec_scope = ObservationScope(f"{key.key}/SPM{spec_item.spm.get(1) or 1}",
                                          None, spec_ref)
            supporting += [map_observation(state, item.obx, spec_scope,
                                           nte_annotations(item.notes))
                           for item in spec_item.observations]
        reasons = [m[0] for m in (map_diagnosis(state, dg1) for dg1 in group.details) if m]
        ref = map_service_request(state, key, group.orc, group.obr,
                                  notes=group.notes_as_annotations(), specimens=specimens)
        request = state.builder.resource(ref) if ref else None
        if request is not None and reasons:
            request["reasonReference"] = [{"reference": r} for r in reasons]
        if request is not None and supporting:
            request["supportingInfo"] = [{"reference": s} for s in supporting if s]
    warn_skipped(state, msg, _HANDLED)
