"""Reading a message's segment groups: the patient group, and order groups
(ORC/OBR with their NTE, OBX, SPM), the way the v2 abstract message syntax nests them.

The grouping is positional and forgiving: ORC opens an order (or joins an OBR just
before it, as in OUL); OBR joins the open ORC or opens a new order; OBX and NTE attach to
the nearest preceding OBX / OBR / SPM; a SPM seen before any order (specimen-first OUL
structures) applies to the next order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from huitong.ingest.hl7v2.mapping.errors import MappingError
from huitong.ingest.hl7v2.mapping.message import Segment, V2Message
from huitong.ingest.hl7v2.mapping.segments.nte import nte_annotations
from huitong.ingest.hl7v2.mapping.segments.pid import map_patient
from huitong.ingest.hl7v2.mapping.segments.pv1 import map_encounter
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["ObservationItem", "OrderGroup", "SpecimenItem", "map_patient_group",
           "order_groups", "warn_skipped"]

# segments that carry nothing for FHIR here (header, software, event) — never warned
QUIET = {"MSH", "SFT", "EVN", "UAC", "DB1", "ARV", "ROL", "PRT", "TQ1", "TQ2", "CTD", "CTI",
         "SAC", "INV", "BLG", "FT1", "IN2", "IN3", "GT1", "ACC", "PDA", "RF1", "CON", "RGS",
         "MRG"}


@dataclass
class ObservationItem:
    obx: Segment
    notes: list[Segment] = field(default_factory=list)


@dataclass
class SpecimenItem:
    spm: Segment
    observations: list[ObservationItem] = field(default_factory=list)


@dataclass
class OrderGroup:
    orc: Segment | None = None
    obr: Segment | None = None
    notes: list[Segment] = field(default_factory=list)
    observations: list[ObservationItem] = field(default_factory=list)
    specimens: list[SpecimenItem] = field(default_factory=list)
    details: list[Segment] = field(default_factory=list)  # RXA, RXE, RXR, TXA, … in order

    def notes_as_annotations(self) -> list[dict[str, Any]]:
        return nte_annotations(self.notes)


def order_groups(segments: list[Segment], detail_ids: frozenset[str] = frozenset()
                 ) -> tuple[list[OrderGroup], list[ObservationItem]]:
    """Order groups in message order, and the OBX (with NTE) that precede any order."""
    groups: list[OrderGroup] = []
    loose: list[ObservationItem] = []
    pending_specimens: list[SpecimenItem] = []
    current: OrderGroup | None = None
    last_obx: ObservationItem | None = None
    last_spm: SpecimenItem | None = None

    def open_group(**kw: Any) -> OrderGroup:
        nonlocal pending_specimens
        group = OrderGroup(**kw)
        group.specimens.extend(pending_specimens)
        pending_specimens = []
        groups.append(group)
        return group

    for seg in segments:
        sid = seg.id
        if sid == "ORC":
            if current is not None and current.orc is None and current.obr is not None and (
                not current.observations
            ):
                current.orc = seg  # OUL puts the ORC after its OBR
            else:
                current = open_group(orc=seg)
            last_obx, last_spm = None, None
        elif sid == "OBR":
            if current is not None and current.obr is None and current.orc is not None and (
                not current.observations
            ):
                current.obr = seg
            else:
                current = open_group(obr=seg)
            last_obx, last_spm = None, None
        elif sid == "OBX":
            item = ObservationItem(seg)
            if last_spm is not None:
                last_spm.observations.append(item)
            elif current is not None:
                current.observations.append(item)
            else:
                loose.append(item)
            last_obx = item
        elif sid == "NTE":
            if last_obx is not None:
                last_obx.notes.append(seg)
            elif current is not None:
                current.notes.append(seg)
        elif sid == "SPM":
            last_spm = SpecimenItem(seg)
            last_obx = None
            if current is not None:
                current.specimens.append(last_spm)
            else:
                pending_specimens.append(last_spm)
        elif sid in detail_ids:
            if current is None:
                current = open_group()
            current.details.append(seg)
            last_obx, last_spm = None, None
    return groups, loose


def map_patient_group(state: MapState, msg: V2Message, *, required: bool = True,
                      with_visit: bool = True, status: str | None = None) -> None:
    """Map the message's (first) PID with its PD1/NK1 and PV1/PV2."""
    pid = msg.first("PID")
    if pid is None:
        if required:
            raise MappingError(100, "PID", "The message has no PID segment",
                               "消息缺少 PID 段")
        return
    at = msg.segments.index(pid)
    following: list[Segment] = []
    for seg in msg.segments[at + 1:]:
        if seg.id == "PID":
            break
        following.append(seg)
    pd1 = next((s for s in following if s.id == "PD1"), None)
    nk1s = [s for s in following if s.id == "NK1"]
    map_patient(state, pid, pd1, nk1s)
    if with_visit:
        pv1 = next((s for s in following if s.id == "PV1"), None)
        if pv1 is not None:
            pv2 = next((s for s in following if s.id == "PV2"), None)
            map_encounter(state, pv1, pv2, status)


def warn_skipped(state: MapState, msg: V2Message, handled: set[str]) -> None:
    """Warn once per segment id the mapping of this message type leaves out (Z-segments are
    not warned: they are kept with the raw message by design)."""
    counts: dict[str, int] = {}
    for seg in msg.segments:
        if not seg.id.startswith("Z") and seg.id not in handled and seg.id not in QUIET:
            counts[seg.id] = counts.get(seg.id, 0) + 1
    for sid, n in counts.items():
        state.warn("segment-ignored", sid,
                   f"{n} {sid} segment(s) not mapped for this message type",
                   f"此消息类型不映射 {sid} 段（{n} 个）")
