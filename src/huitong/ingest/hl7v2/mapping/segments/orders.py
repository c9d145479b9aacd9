"""ORC + OBR → ``ServiceRequest``; OBR → ``DiagnosticReport``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-orc-to-servicerequest.html,
ConceptMap-segment-obr-to-servicerequest.html, ConceptMap-segment-obr-to-diagnosticreport.html).

An order is keyed by its placer order number (ORC-2, else OBR-2), else its filler number
(ORC-3, else OBR-3); the same key names its results, so an ORU finds the ServiceRequest
written by the ORM/OML. Order status: ORC-5 (table 0038), else ORC-1 (table 0119).
DiagnosticReport status: OBR-25 (table 0123).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    dtm_instant,
    ei_identifier,
    xcn_reference,
)
from huitong.ingest.hl7v2.mapping.message import Segment, Value
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["OrderKey", "map_report", "map_service_request", "order_key"]

_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
# table 0038 order status → ServiceRequest.status
_ORDER_STATUS = {"A": "active", "CA": "revoked", "CM": "completed", "DC": "revoked",
                 "ER": "entered-in-error", "HD": "on-hold", "IP": "active", "RP": "revoked",
                 "SC": "active"}
# table 0119 order control → ServiceRequest.status when ORC-5 is empty
_CONTROL_STATUS = {"NW": "active", "OK": "active", "SN": "active", "XO": "active",
                   "XX": "active", "RE": "active", "SC": "active", "RL": "active",
                   "CA": "revoked", "CR": "revoked", "DC": "revoked", "OC": "revoked",
                   "OD": "revoked", "HD": "on-hold", "OH": "on-hold", "RP": "revoked",
                   "CH": "active", "NA": "active", "PA": "active", "UA": "unknown"}
# table 0123 result status → DiagnosticReport.status
_REPORT_STATUS = {"A": "partial", "C": "corrected", "F": "final", "I": "registered",
                  "O": "registered", "P": "preliminary", "R": "partial", "S": "registered",
                  "X": "cancelled", "Y": "unknown", "Z": "unknown", "D": "entered-in-error",
                  "M": "partial", "B": "registered", "N": "unknown"}
_PRIORITY = {"S": "stat", "A": "asap", "R": "routine", "P": "routine", "T": "urgent",
             "C": "urgent"}


@dataclass(frozen=True)
class OrderKey:
    """The identifiers of one order: placer and filler (FHIR Identifiers) and the text key
    used to build the identifiers of its results."""

    placer: dict[str, Any] | None
    filler: dict[str, Any] | None
    key: str

    @property
    def primary(self) -> tuple[str, str]:
        ident = self.placer or self.filler
        assert ident is not None
        return ident["system"], ident["value"]

    @property
    def report(self) -> tuple[str, str]:
        ident = self.filler or self.placer
        assert ident is not None
        return ident["system"], ident["value"]

    def identifiers(self) -> list[dict[str, Any]]:
        out = []
        for ident, code in ((self.placer, "PLAC"), (self.filler, "FILL")):
            if ident:
                out.append({**ident, "type": {"coding": [{"system": _V2_0203, "code": code}]}})
        return out


def _first(*values: Value) -> Value:
    return next((v for v in values if not v.empty), Value(()))


def order_key(state: MapState, orc: Segment | None, obr: Segment | None) -> OrderKey:
    """The order's identifiers from ORC-2/3 and OBR-2/3 (derived when both are empty)."""
    placer_v = _first(*(s.value(2) for s in (orc, obr) if s is not None))
    filler_v = _first(*(s.value(3) for s in (orc, obr) if s is not None))
    placer = ei_identifier(state, placer_v, "placer-order")
    filler = ei_identifier(state, filler_v, "filler-order")
    if placer is None and filler is None:
        where = (obr or orc)
        assert where is not None
        basis = [where.get(4) if obr is not None else "", obr.get(7) if obr else "",
                 state.msg.control_id, str(where.index)]
        system, value = state.derived_identifier("order", *basis)
        placer = {"system": system, "value": value}
        state.warn("derived-id", where.loc(2), "No placer or filler order number; the order "
                   "is identified by this message", "缺少申请方和执行方医嘱号；以本消息识别医嘱")
    main = placer or filler
    assert main is not None
    return OrderKey(placer, filler, f"{main['system']}|{main['value']}")


def _status(orc: Segment | None, default: str = "active") -> str:
    if orc is None:
        return default
    return _ORDER_STATUS.get(orc.get(5).upper()) or _CONTROL_STATUS.get(
        orc.get(1).upper(), default)


def map_service_request(state: MapState, key: OrderKey, orc: Segment | None,
                        obr: Segment | None, *, notes: list[dict[str, Any]] | None = None,
                        specimens: list[str] | None = None, owner: bool = True,
                        status: str | None = None) -> str | None:
    """Add the ServiceRequest (``owner``: the message is the order itself, so update;
    otherwise create only if absent). ``None`` without an OBR-4 code."""
    code = cwe_codeable_concept(state, obr.value(4)) if obr is not None else None
    if code is None:
        return None
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": key.identifiers(),
        "status": status or _status(orc),
        "intent": "order",
        "code": code,
        "subject": state.subject(),
    }
    assert obr is not None
    if state.encounter:
        request["encounter"] = {"reference": state.encounter}
    offset = state.ctx.default_utc_offset
    authored = orc.get(9) if orc is not None else ""
    if authored and dtm_datetime(authored, offset):
        request["authoredOn"] = dtm_datetime(authored, offset)
    when = obr.get(7) or obr.get(6)
    if when and dtm_datetime(when, offset):
        request["occurrenceDateTime"] = dtm_datetime(when, offset)
    priority = (obr.value(27)[6] or obr.get(5)).upper()
    if priority in _PRIORITY:
        request["priority"] = _PRIORITY[priority]
    requesters = ([v for v in orc.reps(12)] if orc is not None else []) + obr.reps(16)
    requester = next((r for r in (xcn_reference(state, v, request) for v in requesters) if r),
                     None)
    if requester:
        request["requester"] = requester
    reasons = [c for c in (cwe_codeable_concept(state, v) for v in obr.reps(31)) if c]
    if reasons:
        request["reasonCode"] = reasons
    if specimens:
        request["specimen"] = [{"reference": s} for s in specimens]
    if notes:
        request["note"] = notes
    add = state.builder.put if owner else state.builder.ensure
    return add(request, key.primary)


def map_report(state: MapState, key: OrderKey, obr: Segment, observations: list[str],
               *, request: str | None, specimens: list[str]) -> str:
    """Add the DiagnosticReport for ``obr`` and its results."""
    raw = obr.get(25).upper()
    status = _REPORT_STATUS.get(raw)
    if status is None:
        status = "unknown"
        shown = repr(raw) if raw else "(empty)"
        state.warn("unmapped-code", obr.loc(25),
                   f"OBR-25 result status {shown} not known; DiagnosticReport.status is unknown",
                   f"OBR-25 报告状态 {shown} 无法识别；DiagnosticReport.status 记为 unknown")
    code = cwe_codeable_concept(state, obr.value(4)) or {"text": "unknown"}
    ident = key.report
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "identifier": key.identifiers(),
        "status": status,
    }
    if request:
        report["basedOn"] = [{"reference": request}]
    section = obr.get(24)
    if section:
        report["category"] = [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": section}]}]
    report["code"] = code
    report["subject"] = state.subject()
    if state.encounter:
        report["encounter"] = {"reference": state.encounter}
    offset = state.ctx.default_utc_offset
    start = dtm_datetime(obr.get(7), offset) if obr.get(7) else None
    end = dtm_datetime(obr.get(8), offset) if obr.get(8) else None
    if start and end and end != start:
        report["effectivePeriod"] = {"start": start, "end": end}
    elif start:
        report["effectiveDateTime"] = start
    issued = dtm_instant(obr.get(22), offset) if obr.get(22) else None
    if issued:
        report["issued"] = issued
    interpreter = obr.value(32)
    if interpreter[1] or interpreter.part(1)[1]:
        # OBR-32 is an NDL whose first component is a CNN (sub-components)
        person = interpreter.part(1)
        ref = xcn_reference(state, person, report)
        if ref:
            report["resultsInterpreter"] = [ref]
    if specimens:
        report["specimen"] = [{"reference": s} for s in specimens]
    if observations:
        report["result"] = [{"reference": o} for o in observations]
    return state.builder.put(report, ident)
