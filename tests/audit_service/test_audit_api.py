"""With authentication on: entries carry the principal (role, user, organization) and the
basis of the decision, and the audit API answers "who accessed my record" to a patient with
a token — only about their own record — while auditors see everything (SQLite and
PostgreSQL)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from access_enforcement.enforce_helpers import Region
from huitong.access import Role
from huitong.audit import leaf_hash, verify_inclusion
from huitong.store import Repository


@pytest.fixture
def region(repo: Repository) -> Iterator[Region]:
    r = Region(repo)
    yield r
    r.close()


def _get(region: Region, token: str, path: str) -> httpx.Response:
    return region._loop.run_until_complete(
        region._http.get(path, headers={"Authorization": f"Bearer {token}"})
    )


def test_patient_sees_who_accessed_their_record(region: Region) -> None:
    doctor = region.user_token(Role.CLINICIAN, org="org-a", practitioner="pr-a")
    assert region.get(doctor, "Observation?subject=Patient/pb2").status_code == 200
    assert region.get(doctor, "Patient/pa1").status_code == 200
    assert region.get(doctor, "Patient/pb1").status_code == 404  # hidden: not org-a's

    me = region.user_token(Role.PATIENT, patient_ids=("pb2",), scope="patient/*.rs")
    r = _get(region, me, "/api/audit/entries")
    assert r.status_code == 200, r.text
    found = r.json()["entries"]
    reads = [e for e in found if e["action"] == "search-type"]
    assert len(reads) == 1
    (e,) = reads
    assert e["actor"] == {"role": "clinician", "organization": "org-a", "practitioner": "pr-a"}
    assert e["patients"] == ["pb2"] and "query" not in e and "resources" not in e
    # the precise ground: pb2's own consent to org-a, named by id
    assert e["basis"] == {"kind": "consent", "code": "consent-permit", "ref": "cons-pb2"}
    assert "org-a" in e["summary"]["en"] and "依据" in e["summary"]["zh"]
    # nothing about other patients: the read of pa1 and the refused pb1 are not listed
    assert all(set(x["patients"]) <= {"pb2"} for x in found)
    assert _get(region, me, "/api/audit/entries?patient=pa1").status_code == 403


@pytest.mark.parametrize(
    ("role", "kwargs", "status"),
    [
        (Role.AUDITOR, {}, 200),
        (Role.CLINICIAN, {"org": "org-a"}, 403),
        (Role.PLATFORM_ADMIN, {}, 403),
        (Role.RESEARCHER, {}, 403),
    ],
)
def test_who_may_read_the_log(region: Region, role: Role, kwargs: dict[str, str],
                              status: int) -> None:  # fmt: skip
    token = region.user_token(role, **kwargs)
    assert _get(region, token, "/api/audit/entries").status_code == status


def test_auditor_gets_entries_with_proofs(region: Region) -> None:
    doctor = region.user_token(Role.CLINICIAN, org="org-a", practitioner="pr-a")
    assert region.get(doctor, "Patient/pa1").status_code == 200
    auditor = region.user_token(Role.AUDITOR)
    listed = _get(region, auditor, "/api/audit/entries?action=read").json()["entries"]
    (read,) = listed
    assert read["actor"]["user"] and read["resources"] == ["Patient/pa1"]
    index = _get(region, auditor, "/api/audit/entries?action=read").json()["entries"][0]
    r = _get(region, auditor, "/api/audit/entries/0")
    assert r.status_code == 200, r.text
    body = r.json()
    proof = [base64.b64decode(h) for h in body["inclusionProof"]]
    root = base64.b64decode(body["root"])
    leaf = leaf_hash(base64.b64decode(body["bytes"]))
    assert verify_inclusion(leaf, 0, body["size"], proof, root)
    assert index["seq"] >= 1
    cp = _get(region, auditor, "/api/audit/checkpoint").json()
    assert cp["size"] >= 1 and "BEGIN PUBLIC KEY" in cp["publicKey"]
    # the auditor's own reads of the log are audited too
    assert _get(region, auditor, "/api/audit/entries?action=audit-read").json()["entries"]
    event = _get(region, auditor, "/api/audit/entries/0/AuditEvent").json()
    assert event["resourceType"] == "AuditEvent" and event["id"] == "0"


def test_denied_read_is_recorded_with_the_refusal(region: Region) -> None:
    admin = region.user_token(Role.PLATFORM_ADMIN)
    assert region.get(admin, "Observation?status=final").status_code == 403
    auditor = region.user_token(Role.AUDITOR)
    (e,) = _get(region, auditor, "/api/audit/entries?action=search-type").json()["entries"]
    assert e["outcome"] == "minor-failure"
    assert e["basis"] == {"kind": "denied", "code": "platform-admin-no-clinical"}
