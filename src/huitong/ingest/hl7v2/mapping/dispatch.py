"""``map_message``: one parsed HL7 v2 message → a FHIR transaction Bundle and what the caller
needs besides (warnings, Z-segments, patient identifiers, a merge request).

Which message structures are mapped, and by which module, is decided here and only here.
HL7 v2-to-FHIR IG: https://build.fhir.org/ig/HL7/v2-to-fhir/
"""

from __future__ import annotations

from collections.abc import Callable

import hl7

from huitong.ingest.hl7v2.mapping.errors import UnsupportedMessage
from huitong.ingest.hl7v2.mapping.message import V2Message
from huitong.ingest.hl7v2.mapping.messages.adt import ADT_EVENTS, MERGE_EVENTS, map_adt
from huitong.ingest.hl7v2.mapping.messages.documents import map_mdm
from huitong.ingest.hl7v2.mapping.messages.orders import map_orders
from huitong.ingest.hl7v2.mapping.messages.pharmacy import map_pharmacy
from huitong.ingest.hl7v2.mapping.messages.problems import map_ppr
from huitong.ingest.hl7v2.mapping.messages.referrals import map_ref
from huitong.ingest.hl7v2.mapping.messages.results import map_results
from huitong.ingest.hl7v2.mapping.messages.scheduling import map_siu
from huitong.ingest.hl7v2.mapping.messages.vxu import map_vxu
from huitong.ingest.hl7v2.mapping.model import MappingContext, MappingResult, MergeRequest
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["SUPPORTED_EVENTS", "map_message"]

Mapper = Callable[[MapState, V2Message], MergeRequest | None]


# message code → (mapper, trigger events it maps)
_MAPPERS: dict[str, tuple[Mapper, frozenset[str]]] = {
    "ADT": (map_adt, frozenset(ADT_EVENTS) | MERGE_EVENTS),
    "ORU": (map_results, frozenset({"R01"})),
    "OUL": (map_results, frozenset({"R22", "R23", "R24"})),
    "ORM": (map_orders, frozenset({"O01"})),
    "OML": (map_orders, frozenset({"O21"})),
    "OMG": (map_orders, frozenset({"O19"})),
    "VXU": (map_vxu, frozenset({"V04"})),
    "RDE": (map_pharmacy, frozenset({"O11", "O25"})),
    "RDS": (map_pharmacy, frozenset({"O13"})),
    "MDM": (map_mdm, frozenset({f"T{n:02d}" for n in range(1, 12)})),
    "SIU": (map_siu, frozenset({"S12", "S13", "S14", "S15", "S16", "S17", "S26"})),
    "PPR": (map_ppr, frozenset({"PC1", "PC2", "PC3"})),
    "REF": (map_ref, frozenset({"I12", "I14"})),
}

SUPPORTED_EVENTS: dict[str, frozenset[str]] = {k: v for k, (_, v) in _MAPPERS.items()}


def map_message(message: hl7.Message | str, ctx: MappingContext) -> MappingResult:
    """Map ``message`` for the channel described by ``ctx``.

    ``message`` is a python-hl7 message, or its decoded text with CR segment ends (the
    faster path: the mapping splits fields itself and skips python-hl7's containers).

    Raises :class:`UnsupportedMessage` (code 200: message type, 201: trigger event) for
    what Huitong does not map, and :class:`MappingError` (HL7 table 0357 code, location)
    for content that cannot be mapped. Pure: nothing is written.
    """
    msg = V2Message(message)
    code, event = msg.message_code, msg.trigger_event
    entry = _MAPPERS.get(code)
    if entry is None:
        raise UnsupportedMessage(200, f"Message type {code or '(empty)'} is not mapped",
                                 f"不支持 {code or '（空）'} 类型消息的映射")
    mapper, events = entry
    if event not in events:
        raise UnsupportedMessage(201, f"{code}^{event} is not mapped",
                                 f"不支持 {code}^{event} 事件的映射")
    state = MapState(ctx, msg)
    merge = mapper(state, msg)
    for rtype, (system, value) in state.builder.collisions:
        state.warn("duplicate-id", rtype,
                   f"Two {rtype} in this message share the identifier {system}|{value}; "
                   "only the first is kept",
                   f"本消息中两个 {rtype} 使用同一标识 {system}|{value}；仅保留第一个")
    zsegments = sorted({s.id for s in msg.segments if s.id.startswith("Z")})
    return MappingResult(
        bundle=state.builder.bundle(),
        warnings=state.warnings,
        zsegments=zsegments,
        patient_identifiers=state.patient_identifiers,
        merge=merge,
    )
