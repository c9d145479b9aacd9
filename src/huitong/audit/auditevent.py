"""An audit entry as a FHIR R4 AuditEvent — https://hl7.org/fhir/R4/auditevent.html.

The mapping follows the RESTful-interaction pattern of the AuditEvent page (type ``rest``,
subtype the interaction code) for FHIR interactions, and DICOM audit event types for logins
and exports. The access decision travels twice: as ``purposeOfEvent`` (the v3 ActReason
code, with the decision as text) and as an ``entity`` of type ``access-decision`` whose
``detail`` rows carry the basis kind, rule code, consent / share-code id and, for
break-glass, the stated justification and the end of the window. Where patients were reached
on different grounds, each patient entity carries its own basis in ``detail`` rows of the
same types. Every Consent a basis names is also in the user agent's ``policy``. The mapping
is pure; it neither reads nor stores anything.
"""

from __future__ import annotations

import base64
from typing import Any

from huitong.audit.entry import AccessBasis, AuditEntry, BasisKind, Outcome
from huitong.fhir.dates import format_instant

__all__ = ["HUITONG_AUDIT_SYSTEM", "to_audit_event"]

HUITONG_AUDIT_SYSTEM = "urn:huitong:audit"  # codes Huitong defines (roles, decision details)

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_SECURITY_ROLE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"

_REST = {
    "read", "vread", "update", "patch", "delete", "history-instance", "history-type",
    "history-system", "create", "search-type", "search-system", "batch", "transaction",
    "operation", "capabilities",
}  # fmt: skip

# AuditEvent.action (C R U D E): reads of known instances are R; queries and operations are E.
_ACTION_CODE = {
    "create": "C", "read": "R", "vread": "R", "history-instance": "R", "update": "U",
    "patch": "U", "delete": "D", "message-read": "R",
}  # fmt: skip

_OUTCOME_CODE = {
    Outcome.SUCCESS: "0",
    Outcome.MINOR_FAILURE: "4",
    Outcome.SERIOUS_FAILURE: "8",
    Outcome.MAJOR_FAILURE: "12",
}

_PLATFORM_EVENT: dict[str, tuple[dict[str, str], dict[str, str] | None]] = {
    "login": ({"code": "110114", "display": "User Authentication"},
              {"code": "110122", "display": "Login"}),
    "login-failed": ({"code": "110114", "display": "User Authentication"},
                     {"code": "110122", "display": "Login"}),
    "logout": ({"code": "110114", "display": "User Authentication"},
               {"code": "110123", "display": "Logout"}),
    "export": ({"code": "110106", "display": "Export"}, None),
}  # fmt: skip


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _event_type(action: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    if action in _REST:
        return _coding(_EVENT_TYPE, "rest", "RESTful Operation"), [_coding(_INTERACTION, action)]
    if action in _PLATFORM_EVENT:
        kind, sub = _PLATFORM_EVENT[action]
        return {"system": _DCM, **kind}, [{"system": _DCM, **sub}] if sub else []
    # consent changes, break-glass, share codes, token issue: Huitong's own events
    return _coding(HUITONG_AUDIT_SYSTEM, action), []


def _agents(entry: AuditEntry) -> list[dict[str, Any]]:
    actor, basis = entry.actor, entry.basis
    purpose = [{"coding": [_coding(_ACT_REASON, entry.purpose)]}]
    role = [{"coding": [_coding(HUITONG_AUDIT_SYSTEM, actor.role)]}]
    agents: list[dict[str, Any]] = []
    if actor.user is not None:
        who: dict[str, Any] = (
            {"reference": f"Practitioner/{actor.practitioner}"}
            if actor.practitioner
            else {"identifier": {"system": f"{HUITONG_AUDIT_SYSTEM}:user", "value": actor.user}}
        )
        user: dict[str, Any] = {
            "type": {"coding": [_coding(_SECURITY_ROLE, "humanuser", "human user")]},
            "role": role,
            "who": who,
            "altId": actor.user,
            "requestor": True,
            "purposeOfUse": purpose,
        }
        consents = sorted({
            f"Consent/{b.ref}" for b in (basis, *(a.basis for a in entry.access))
            if b.kind is BasisKind.CONSENT and b.ref
        })  # fmt: skip
        if consents:
            user["policy"] = consents
        if actor.address:
            user["network"] = {"address": actor.address, "type": "2"}  # 2 = IP address
        agents.append(user)
    if actor.client is not None:
        client: dict[str, Any] = {
            "type": {"coding": [_coding(_DCM, "110150", "Application")]},
            "who": {"identifier": {"system": f"{HUITONG_AUDIT_SYSTEM}:client",
                                   "value": actor.client}},
            "requestor": actor.user is None,
        }  # fmt: skip
        if actor.user is None:
            client["role"] = role
            client["purposeOfUse"] = purpose
            if actor.address:
                client["network"] = {"address": actor.address, "type": "2"}
        agents.append(client)
    if actor.organization is not None:
        agents.append({
            "type": {"coding": [_coding(HUITONG_AUDIT_SYSTEM, "organization")]},
            "who": {"reference": f"Organization/{actor.organization}"},
            "requestor": False,
        })  # fmt: skip
    if not agents:  # an unauthenticated attempt still names who it claimed to be: nobody
        agents.append({"type": {"text": "unknown"}, "role": role, "requestor": True})
    return agents


def _basis_detail(basis: AccessBasis) -> list[dict[str, Any]]:
    detail = [
        {"type": "basis-kind", "valueString": basis.kind.value},
        {"type": "basis-code", "valueString": basis.code},
    ]
    if basis.ref is not None:
        detail.append({"type": "basis-ref", "valueString": basis.ref})
    if basis.justification is not None:
        detail.append({"type": "break-glass-justification", "valueString": basis.justification})
    if basis.until is not None:
        detail.append({"type": "valid-until", "valueString": format_instant(basis.until)})
    return detail


def _decision_entity(entry: AuditEntry) -> dict[str, Any]:
    basis = entry.basis
    detail = _basis_detail(basis)
    if entry.request_id is not None:
        detail.append({"type": "request-id", "valueString": entry.request_id})
    entity: dict[str, Any] = {
        "type": _coding(HUITONG_AUDIT_SYSTEM, "access-decision"),
        "name": f"{basis.kind.value}:{basis.code}",
        "detail": detail,
    }
    if basis.kind is BasisKind.CONSENT and basis.ref:
        entity["what"] = {"reference": f"Consent/{basis.ref}"}
    return entity


def _entities(entry: AuditEntry) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for pid in entry.patients:
        patient: dict[str, Any] = {
            "what": {"reference": f"Patient/{pid}"},
            "type": _coding(_ENTITY_TYPE, "1", "Person"),
            "role": _coding(_OBJECT_ROLE, "1", "Patient"),
        }
        if entry.access:  # patients reached on different grounds: this one's
            patient["detail"] = _basis_detail(entry.basis_for(pid))
        out.append(patient)
    out.extend(
        {
            "what": {"reference": ref},
            "type": _coding(_ENTITY_TYPE, "2", "System Object"),
            "role": _coding(_OBJECT_ROLE, "4", "Domain Resource"),
        }
        for ref in entry.resources
    )
    if entry.query is not None:
        out.append({
            "type": _coding(_ENTITY_TYPE, "2", "System Object"),
            "role": _coding(_OBJECT_ROLE, "24", "Query"),
            "query": base64.b64encode(entry.query.encode()).decode("ascii"),
            **({"name": entry.resource_type} if entry.resource_type else {}),
        })  # fmt: skip
    out.append(_decision_entity(entry))
    return out


def to_audit_event(
    entry: AuditEntry,
    *,
    id: str | None = None,
    site: str = "huitong",
    observer: str = "Huitong",
) -> dict[str, Any]:
    """The AuditEvent for ``entry``. ``id`` is the resource id to give it (the lead's choice,
    e.g. the log index); ``site``/``observer`` name the reporting system
    (``AuditEvent.source``, whose ``observer`` is required)."""
    event_type, subtype = _event_type(entry.action)
    event: dict[str, Any] = {"resourceType": "AuditEvent"}
    if id is not None:
        event["id"] = id
    event["type"] = event_type
    if subtype:
        event["subtype"] = subtype
    event["action"] = _ACTION_CODE.get(entry.action, "E")
    event["recorded"] = format_instant(entry.recorded)
    event["outcome"] = _OUTCOME_CODE[entry.outcome]
    if entry.detail is not None:
        event["outcomeDesc"] = entry.detail
    event["purposeOfEvent"] = [
        {
            "coding": [_coding(_ACT_REASON, entry.purpose)],
            "text": f"{entry.basis.kind.value}: {entry.basis.code}",
        }
    ]
    event["agent"] = _agents(entry)
    event["source"] = {
        "site": site,
        "observer": {"display": observer},
        "type": [_coding(_SOURCE_TYPE, "4", "Application Server")],
    }
    event["entity"] = _entities(entry)
    return event
