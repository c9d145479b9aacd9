"""Audit entries: canonical bytes, strict parsing, and the FHIR R4 AuditEvent mapping."""

from __future__ import annotations

import base64

import orjson
import pytest

from huitong.audit import (
    AccessBasis,
    Actor,
    AuditEntry,
    BasisKind,
    Outcome,
    canonical_bytes,
    parse_entry,
    to_audit_event,
)
from huitong.fhir.validation import validate_resource

T0 = 1_700_000_000_123_456

CLINICIAN = Actor(role="clinician", user="u-17", client="portal", organization="org-1",
                  practitioner="prac-9", address="10.0.0.5")  # fmt: skip


def entry(**over: object) -> AuditEntry:
    fields: dict[str, object] = {
        "recorded": T0,
        "action": "search-type",
        "actor": CLINICIAN,
        "basis": AccessBasis(BasisKind.CONSENT, "clinician-consent", ref="consent-3"),
        "request_id": "req-1",
        "resource_type": "Observation",
        "resources": ("Observation/b", "Observation/a", "Observation/b"),
        "patients": ("p2", "p1"),
        "query": "patient=p1&code=8867-4",
    }
    fields.update(over)
    return AuditEntry(**fields)  # type: ignore[arg-type]


def test_canonical_bytes_are_sorted_compact_and_documented() -> None:
    data = canonical_bytes(entry())
    assert data == (
        b'{"action":"search-type","actor":{"address":"10.0.0.5","client":"portal",'
        b'"organization":"org-1","practitioner":"prac-9","role":"clinician","user":"u-17"},'
        b'"basis":{"code":"clinician-consent","kind":"consent","ref":"consent-3"},'
        b'"outcome":"success","patients":["p1","p2"],"purpose":"TREAT",'
        b'"query":"patient=p1&code=8867-4","recorded":1700000000123456,"request":"req-1",'
        b'"resources":["Observation/a","Observation/b"],"type":"Observation","v":1}'
    )


def test_same_content_same_bytes_whatever_the_input_order() -> None:
    a = entry(patients=("p1", "p2"), resources=("Observation/a", "Observation/b"))
    assert canonical_bytes(a) == canonical_bytes(entry())


def test_unicode_is_kept_as_utf8() -> None:
    e = entry(basis=AccessBasis(BasisKind.BREAK_GLASS, "break-glass", justification="急诊昏迷",
                                until=T0 + 3_600_000_000))  # fmt: skip
    data = canonical_bytes(e)
    assert "急诊昏迷".encode() in data
    assert parse_entry(data) == e


@pytest.mark.parametrize(
    "e",
    [
        entry(),
        entry(action="login-failed", actor=Actor(role="patient", user="u-2"),
              basis=AccessBasis(BasisKind.DENIED, "bad-password"),
              outcome=Outcome.MINOR_FAILURE, resources=(), patients=(), query=None,
              resource_type=None, detail="wrong password"),
        entry(actor=Actor(role="system", client="lab-feed"),
              basis=AccessBasis(BasisKind.SCOPE, "system-scope", ref="system/*.read")),
    ],
)  # fmt: skip
def test_round_trip(e: AuditEntry) -> None:
    assert parse_entry(canonical_bytes(e)) == e


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b.replace(b'"v":1', b'"v":2'),
        lambda b: orjson.dumps(dict(reversed(orjson.loads(b).items()))),  # keys unsorted
        lambda b: orjson.dumps(orjson.loads(b), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2),
        lambda b: b.replace(b'"patients":["p1","p2"]', b'"patients":["p2","p1"]'),
        lambda b: b.replace(b'"action":"search-type"', b'"action":"teleport"'),
        lambda b: b[:-1],
        lambda b: b.replace(b'"recorded":1700000000123456', b'"recorded":1.7e15'),
    ],
)
def test_parse_refuses_anything_not_canonical(mangle: object) -> None:
    data = canonical_bytes(entry())
    bad = mangle(data)  # type: ignore[operator]
    assert bad != data
    with pytest.raises(ValueError):
        parse_entry(bad)


def test_entry_validation() -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        entry(action="peek")
    with pytest.raises(ValueError, match="recorded"):
        entry(recorded=-1)


def test_now_uses_the_injected_clock() -> None:
    e = AuditEntry.now(lambda: 42, action="read", actor=CLINICIAN,
                       basis=AccessBasis(BasisKind.ROLE, "clinician-own-organization"))  # fmt: skip
    assert e.recorded == 42


# --- FHIR AuditEvent -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e", "action", "type_code", "subtype"),
    [
        (entry(), "E", "rest", "search-type"),
        (entry(action="read", resources=("Observation/a",)), "R", "rest", "read"),
        (entry(action="create"), "C", "rest", "create"),
        (entry(action="update"), "U", "rest", "update"),
        (entry(action="delete"), "D", "rest", "delete"),
        (entry(action="login"), "E", "110114", "110122"),
        (entry(action="export"), "E", "110106", None),
        (entry(action="break-glass"), "E", "break-glass", None),
    ],
)
def test_audit_event_is_valid_fhir_r4(
    e: AuditEntry, action: str, type_code: str, subtype: str | None
) -> None:
    event = to_audit_event(e, id="12")
    validate_resource(event, expected_type="AuditEvent")
    assert event["action"] == action
    assert event["type"]["code"] == type_code
    assert [s["code"] for s in event.get("subtype", [])] == ([subtype] if subtype else [])
    assert event["recorded"] == "2023-11-14T22:13:20.123456+00:00"
    assert event["id"] == "12"


def test_audit_event_carries_who_whom_and_why() -> None:
    event = to_audit_event(entry())
    user, client, org = event["agent"]
    assert user["requestor"] is True and user["who"] == {"reference": "Practitioner/prac-9"}
    assert user["altId"] == "u-17" and user["policy"] == ["Consent/consent-3"]
    assert user["network"]["address"] == "10.0.0.5"
    assert client["who"]["identifier"]["value"] == "portal" and client["requestor"] is False
    assert org["who"] == {"reference": "Organization/org-1"}
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    whats = [x.get("what", {}).get("reference") for x in event["entity"]]
    assert whats[:4] == ["Patient/p1", "Patient/p2", "Observation/a", "Observation/b"]
    query = next(x for x in event["entity"] if x.get("role", {}).get("code") == "24")
    assert base64.b64decode(query["query"]).decode() == "patient=p1&code=8867-4"
    decision = event["entity"][-1]
    assert decision["what"] == {"reference": "Consent/consent-3"}
    details = {d["type"]: d["valueString"] for d in decision["detail"]}
    assert details == {"basis-kind": "consent", "basis-code": "clinician-consent",
                       "basis-ref": "consent-3", "request-id": "req-1"}  # fmt: skip


def test_break_glass_reason_is_in_the_event() -> None:
    e = entry(action="read", purpose="ETREAT",
              basis=AccessBasis(BasisKind.BREAK_GLASS, "break-glass",
                                justification="unconscious in ED", until=T0 + 3_600_000_000))  # fmt: skip
    event = to_audit_event(e)
    validate_resource(event, expected_type="AuditEvent")
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    details = {d["type"]: d["valueString"] for d in event["entity"][-1]["detail"]}
    assert details["break-glass-justification"] == "unconscious in ED"
    assert details["valid-until"] == "2023-11-14T23:13:20.123456+00:00"


@pytest.mark.parametrize(
    ("outcome", "code"),
    [(Outcome.SUCCESS, "0"), (Outcome.MINOR_FAILURE, "4"), (Outcome.SERIOUS_FAILURE, "8"),
     (Outcome.MAJOR_FAILURE, "12")],
)  # fmt: skip
def test_outcome_codes(outcome: Outcome, code: str) -> None:
    assert to_audit_event(entry(outcome=outcome))["outcome"] == code


def test_system_client_and_anonymous_agents() -> None:
    sys_event = to_audit_event(entry(actor=Actor(role="system", client="lab-feed")))
    validate_resource(sys_event, expected_type="AuditEvent")
    (agent,) = sys_event["agent"]
    assert agent["requestor"] is True and agent["role"][0]["coding"][0]["code"] == "system"
    anon = to_audit_event(entry(action="login-failed", actor=Actor(role="unknown")))
    validate_resource(anon, expected_type="AuditEvent")
    assert anon["agent"][0]["requestor"] is True
