"""An audit entry names, per patient touched, what let the clinician in: the organization's
own patient, the referral, the Consent, the share code or the break-glass session — through
the real app with the audit log on, on SQLite and PostgreSQL, without a query per row (on
PostgreSQL the facts the restriction read answer it; on SQLite one statement per entry)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from consent_world import World
from enforce_helpers import HEART_RATE, LOINC

from huitong.access import Role
from huitong.audit.auditevent import to_audit_event
from huitong.audit.entry import AccessBasis, AuditEntry, BasisKind, parse_entry
from huitong.store.repository import Repository

CODE = f"code={LOINC}|{HEART_RATE}"
OWN = AccessBasis(BasisKind.ROLE, "clinician-own-organization")
PB2 = AccessBasis(BasisKind.CONSENT, "consent-permit", ref="cons-pb2")
PB5 = AccessBasis(BasisKind.REFERRAL, "clinician-referral", ref="ref-pb5")


@pytest.fixture
def audited(repo: Repository) -> Iterator[World]:
    w = World(repo, audit="on")
    for name, role, kw in [
        ("clin-a", Role.CLINICIAN, {"org": "org-a", "practitioner": "pr-a"}),
        ("pat-pb1", Role.PATIENT, {"patient_ids": ("pb1",)}),
        ("pat-pb2", Role.PATIENT, {"patient_ids": ("pb2",)}),
        ("auditor", Role.AUDITOR, {}),
    ]:
        w.account(name, role, **kw)
    yield w
    w.close()


def _entries(repo: Repository, action: str) -> list[AuditEntry]:
    rows = repo.query("SELECT entry FROM audit_entries ORDER BY seq")
    return [e for r in rows if (e := parse_entry(bytes(r[0]))).action == action]


def test_a_search_names_each_patients_ground(audited: World) -> None:
    w = audited
    calls: list[str] = []
    real = w.repo.access_query

    def counting(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        calls.append(sql)
        return real(sql, params)  # type: ignore[no-any-return]

    w.repo.access_query = counting  # type: ignore[attr-defined]
    assert w.get(w.token("clin-a"), f"Observation?{CODE}").status_code == 200
    (entry,) = _entries(w.repo, "search-type")
    assert entry.patients == ("pa1", "pa2", "pb2", "pb5")
    grounds = {p: entry.basis_for(p) for p in entry.patients}
    assert grounds == {"pa1": OWN, "pa2": OWN, "pb2": PB2, "pb5": PB5}
    # the entry's own basis stays the policy's; the patients reached otherwise are listed
    assert entry.basis.code == "clinician-care-relationship"
    assert {a.patient for a in entry.access} == set(entry.patients)
    # never a query per row: PostgreSQL's facts answered (one statement, read once);
    # SQLite reads them once, for the entry
    assert len(calls) == 1
    # the patient sees their own ground only; the auditor every patient's
    mine = w.api("GET", w.token("pat-pb2"), "audit/entries").json()["entries"]
    (seen,) = [e for e in mine if e["action"] == "search-type"]
    assert seen["basis"] == {"kind": "consent", "code": "consent-permit", "ref": "cons-pb2"}
    assert seen["patients"] == ["pb2"] and "access" not in seen
    full = w.api("GET", w.token("auditor"), "audit/entries?action=search-type").json()
    (listed,) = full["entries"]
    assert {a["patient"]: a.get("ref") for a in listed["access"]} == {
        "pa1": None, "pa2": None, "pb2": "cons-pb2", "pb5": "ref-pb5"}  # fmt: skip
    # as an AuditEvent: each patient entity carries its ground; the consent is a policy
    event = to_audit_event(entry)
    user = next(a for a in event["agent"] if a.get("requestor"))
    assert user["policy"] == ["Consent/cons-pb2"]
    pb5 = next(e for e in event["entity"] if e.get("what") == {"reference": "Patient/pb5"})
    assert {"type": "basis-ref", "valueString": "ref-pb5"} in pb5["detail"]


def test_one_patient_one_ground_is_the_entry_basis(audited: World) -> None:
    w = audited
    assert w.get(w.token("clin-a"), "Observation/obs-pb2").status_code == 200
    (entry,) = _entries(w.repo, "read")
    assert entry.basis == PB2 and entry.access == ()
    assert w.get(w.token("clin-a"), "Patient/pb5").status_code == 200
    assert _entries(w.repo, "read")[-1].basis == PB5


def test_share_code_and_break_glass_are_named(audited: World) -> None:
    w = audited
    issued = w.api("POST", w.token("pat-pb1"), "share-codes", {"resourceTypes": ["Observation"]})
    assert issued.status_code == 201, issued.text
    code_id = issued.json()["codeId"]
    redeem = w.api("POST", w.token("clin-a"), "share-codes/redeem", {"code": issued.json()["code"]})
    assert redeem.status_code == 200, redeem.text
    assert w.get(w.token("clin-a"), "Observation/obs-pb1").status_code == 200
    read = _entries(w.repo, "read")[-1]
    assert read.basis.kind is BasisKind.SHARE_CODE and read.basis.ref == code_id
    glass = w.api("POST", w.token("clin-a"), "break-glass",
                  {"patient": "pb3", "reason": "unconscious in the emergency room"})  # fmt: skip
    assert glass.status_code in (200, 201), glass.text
    assert w.get(w.token("clin-a"), "Observation/obs-pb3").status_code == 200
    read = _entries(w.repo, "read")[-1]
    assert read.basis.kind is BasisKind.BREAK_GLASS and read.purpose == "ETREAT"
    assert read.basis.justification == "unconscious in the emergency room"
    # one search over both: each named
    assert w.get(w.token("clin-a"), f"Observation?{CODE}").status_code == 200
    search = _entries(w.repo, "search-type")[-1]
    assert search.basis_for("pb1").kind is BasisKind.SHARE_CODE
    assert search.basis_for("pb3").kind is BasisKind.BREAK_GLASS
    assert search.basis_for("pb2") == PB2


def test_a_revoked_consent_is_not_named_afterwards(audited: World) -> None:
    w = audited
    assert w.get(w.token("clin-a"), "Observation/obs-pb2").status_code == 200
    consents = w.api("GET", w.token("pat-pb2"), "consents").json()["consents"]
    (mine,) = [c for c in consents if c["id"] == "cons-pb2"]
    assert w.api("POST", w.token("pat-pb2"), f"consents/{mine['id']}/revoke").status_code == 200
    assert w.get(w.token("clin-a"), "Observation/obs-pb2").status_code == 404
    refused = _entries(w.repo, "read")[-1]
    assert refused.outcome.value != "success" and refused.access == ()
