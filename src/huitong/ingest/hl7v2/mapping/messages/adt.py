"""ADT → ``Patient``, ``Encounter`` and the visit's allergies, diagnoses, procedures,
coverage and observations (https://build.fhir.org/ig/HL7/v2-to-fhir/message_maps.html,
ADT_A01 … ADT_A40).

The trigger event decides the Encounter status: A01 admit, A02 transfer, A06/A07 class
changes, A13 cancel discharge → ``in-progress``; A03 discharge → ``finished``; A04 register →
``arrived``; A05/A14 pre-admit / pending admit → ``planned``; A11 cancel admit →
``entered-in-error``; A27 cancel pending admit → ``cancelled``; A08 update and A60 (adverse
reactions, IAM → AllergyIntolerance) → from the PV1 dates.
A28/A31 (person add/update) touch only the Patient. A40 (and A34/A35/A36/A39) are
merges: the Bundle only makes sure the surviving patient exists and the merge itself is
returned as a :class:`MergeRequest` for the identity service.
"""

from __future__ import annotations

from huitong.ingest.hl7v2.mapping.datatypes import cx_identifier
from huitong.ingest.hl7v2.mapping.errors import MappingError, UnsupportedMessage
from huitong.ingest.hl7v2.mapping.message import V2Message
from huitong.ingest.hl7v2.mapping.messages.groups import (
    map_patient_group,
    order_groups,
    warn_skipped,
)
from huitong.ingest.hl7v2.mapping.model import MergeRequest
from huitong.ingest.hl7v2.mapping.segments.al1 import map_allergy
from huitong.ingest.hl7v2.mapping.segments.dg1 import map_diagnosis
from huitong.ingest.hl7v2.mapping.segments.iam import map_adverse_reaction
from huitong.ingest.hl7v2.mapping.segments.in1 import map_coverage
from huitong.ingest.hl7v2.mapping.segments.nte import nte_annotations
from huitong.ingest.hl7v2.mapping.segments.obx import ObservationScope, map_observation
from huitong.ingest.hl7v2.mapping.segments.pr1 import map_procedure
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["ADT_EVENTS", "MERGE_EVENTS", "map_adt"]

# event → Encounter status (None: derived from PV1; "" : no Encounter, person only)
ADT_EVENTS: dict[str, str | None] = {
    "A01": "in-progress", "A02": "in-progress", "A03": "finished", "A04": "arrived",
    "A05": "planned", "A06": "in-progress", "A07": "in-progress", "A08": None,
    "A09": "in-progress", "A10": "in-progress", "A11": "entered-in-error",
    "A12": "in-progress", "A13": "in-progress", "A14": "planned", "A15": "in-progress",
    "A16": "in-progress", "A25": "in-progress", "A26": "in-progress", "A27": "cancelled",
    "A28": "", "A31": "", "A38": "cancelled", "A60": None,
}
MERGE_EVENTS = frozenset({"A34", "A35", "A36", "A39", "A40"})
_HANDLED = {"PID", "PD1", "NK1", "PV1", "PV2", "AL1", "DG1", "PR1", "IN1", "OBX", "NTE",
            "IAM", "IAR"}


def map_adt(state: MapState, msg: V2Message) -> MergeRequest | None:
    event = msg.trigger_event
    if event in MERGE_EVENTS:
        return _merge(state, msg, event)
    if event not in ADT_EVENTS:
        raise UnsupportedMessage(201, f"ADT^{event} is not mapped",
                                 f"不支持 ADT^{event} 事件的映射")
    status = ADT_EVENTS[event]
    state.owns_patient = True
    map_patient_group(state, msg, with_visit=status != "", status=status or None)
    diagnoses = []
    for seg in msg.segments:
        if seg.id == "AL1":
            map_allergy(state, seg)
        elif seg.id == "DG1":
            mapped = map_diagnosis(state, seg)
            if mapped:
                diagnoses.append(mapped[1])
        elif seg.id == "PR1":
            map_procedure(state, seg)
        elif seg.id == "IN1":
            map_coverage(state, seg)
        elif seg.id == "IAM":
            at = msg.segments.index(seg)
            iars = []
            for nxt in msg.segments[at + 1:]:
                if nxt.id == "IAR":
                    iars.append(nxt)
                elif nxt.id != "NTE":
                    break
            map_adverse_reaction(state, seg, iars)
    encounter = state.builder.resource(state.encounter) if state.encounter else None
    if diagnoses and encounter is not None:
        encounter["diagnosis"] = diagnoses
    _, loose = order_groups(msg.segments)
    visit = "|".join(state.encounter_identifier or ("adt", msg.control_id))
    scope = ObservationScope(f"visit:{visit}")
    for item in loose:
        map_observation(state, item.obx, scope, nte_annotations(item.notes))
    warn_skipped(state, msg, _HANDLED)
    return None


def _merge(state: MapState, msg: V2Message, event: str) -> MergeRequest:
    """PID is the surviving patient, MRG-1 the identifiers being merged into it."""
    map_patient_group(state, msg, with_visit=False)
    assert state.patient_identifier is not None
    merged: list[tuple[str, str]] = []
    mrgs = msg.all("MRG")
    if not mrgs:
        raise MappingError(100, "MRG", f"ADT^{event} has no MRG segment",
                           f"ADT^{event} 缺少 MRG 段")
    first_mrg = mrgs[0]
    for cx in first_mrg.reps(1):
        ident = cx_identifier(state, cx, "mrn")
        if ident and (ident["system"], ident["value"]) not in merged:
            merged.append((ident["system"], ident["value"]))
    if not merged:
        raise MappingError(101, first_mrg.loc(1), "MRG-1 (prior patient identifier) is empty",
                           "MRG-1（被合并的患者标识）为空")
    # the message store indexes the message under every identity it touches
    state.patient_identifiers += [m for m in merged if m not in state.patient_identifiers]
    if len(msg.all("PID")) > 1:
        state.warn("merge-pairs", "PID[2]", "Only the first PID/MRG pair is merged; send one "
                   "merge per message", "仅合并第一对 PID/MRG；请每条消息发送一个合并")
    warn_skipped(state, msg, {"PID", "PD1", "PV1"})
    return MergeRequest(surviving=state.patient_identifier, merged=merged,
                        reason=f"ADT^{event} control id {msg.control_id}")
