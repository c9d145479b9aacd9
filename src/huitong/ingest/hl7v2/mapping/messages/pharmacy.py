"""Pharmacy orders and dispenses (https://build.fhir.org/ig/HL7/v2-to-fhir/message_maps.html):

- RDE^O11 / RDE^O25 → ``MedicationRequest`` per ORC with its RXO/RXE/RXR (the message is the
  encoded order: conditional update);
- RDS^O13 → ``MedicationDispense`` per RXD, pointing at the order's MedicationRequest
  (created only if the RDE has not already written it).
"""

from __future__ import annotations

from dataclasses import dataclass

from huitong.ingest.hl7v2.mapping.message import Segment, V2Message
from huitong.ingest.hl7v2.mapping.messages.groups import map_patient_group, warn_skipped
from huitong.ingest.hl7v2.mapping.segments.in1 import map_coverage
from huitong.ingest.hl7v2.mapping.segments.orders import order_key
from huitong.ingest.hl7v2.mapping.segments.rxd import map_dispense
from huitong.ingest.hl7v2.mapping.segments.rxe import map_medication_request
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_pharmacy"]

_HANDLED = {"PID", "PD1", "NK1", "PV1", "PV2", "ORC", "RXO", "RXE", "RXR", "RXC", "RXD",
            "NTE", "IN1"}


@dataclass
class _Order:
    orc: Segment
    rxo: Segment | None = None
    rxe: Segment | None = None
    rxr: Segment | None = None  # the route of the encoded order (the RXR after RXE)
    rxd: Segment | None = None
    dispense_rxr: Segment | None = None


def _orders(msg: V2Message) -> list[_Order]:
    orders: list[_Order] = []
    for seg in msg.segments:
        if seg.id == "ORC":
            orders.append(_Order(seg))
        elif not orders:
            continue
        elif seg.id == "RXO" and orders[-1].rxo is None:
            orders[-1].rxo = seg
        elif seg.id == "RXE" and orders[-1].rxe is None:
            orders[-1].rxe = seg
        elif seg.id == "RXD" and orders[-1].rxd is None:
            orders[-1].rxd = seg
        elif seg.id == "RXR":
            o = orders[-1]
            if o.rxd is not None and o.dispense_rxr is None:
                o.dispense_rxr = seg
            elif o.rxe is not None and o.rxd is None and o.rxr is None:
                o.rxr = seg
    return orders


def map_pharmacy(state: MapState, msg: V2Message) -> None:
    map_patient_group(state, msg)
    for seg in msg.all("IN1"):
        map_coverage(state, seg)
    dispensing = msg.message_code == "RDS"
    for order in _orders(msg):
        if order.rxe is None:
            state.warn("dropped", order.orc.loc(), "A pharmacy order without RXE is not mapped",
                       "缺少 RXE 的药品医嘱未映射")
            continue
        key = order_key(state, order.orc, None)
        if not dispensing:
            map_medication_request(state, key, order.orc, order.rxe, order.rxo, order.rxr)
            continue
        prescription = map_medication_request(state, key, order.orc, order.rxe, order.rxo,
                                              order.rxr, owner=False)
        if order.rxd is None:
            state.warn("dropped", order.orc.loc(), "A dispense order without RXD is not mapped",
                       "缺少 RXD 的发药记录未映射")
            continue
        map_dispense(state, key, order.rxd, order.dispense_rxr, prescription)
    warn_skipped(state, msg, _HANDLED)
