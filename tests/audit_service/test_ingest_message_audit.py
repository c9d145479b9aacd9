"""The integration engine's stored messages are personal health information: every call of
``/api/ingest`` that shows them (one message, a listing) or processes them again is an
audit entry naming the patients they concern, by the operator, with its outcome, stored
before the response leaves (SQLite and PostgreSQL)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "access_enforcement"))

from enforce_helpers import Region

from huitong.access import Role
from huitong.audit.auditevent import to_audit_event
from huitong.audit.entry import AuditEntry, Outcome, parse_entry
from huitong.store import Repository
from huitong_testdata import HL7V2_SAMPLES

CHANNEL = {"organization": "Organization/org-a", "transport": "mllp", "format": "hl7v2",
           "sending_facility": "GHHSFacility", "name": "GHH 医院"}  # fmt: skip
# pa1's identifier in the seeded region (enforce_helpers._patient)
PA1_IDENTIFIER = "urn:oid:2.16.156.10011.1.1|ID-pa1"


@pytest.fixture
def region(repo: Repository) -> Iterator[Region]:
    r = Region(repo)
    yield r
    r.close()


def _call(region: Region, token: str, method: str, path: str, *,
          headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:  # fmt: skip
    return region._loop.run_until_complete(region._http.request(
        method, path, headers={**(headers or {}), "Authorization": f"Bearer {token}"},
        **kw))  # fmt: skip


def _entries(repo: Repository, *actions: str) -> list[AuditEntry]:
    rows = repo.query("SELECT entry FROM audit_entries ORDER BY seq")
    return [e for r in rows if (e := parse_entry(bytes(r[0]))).action in actions]


def _message(region: Region, admin: str) -> tuple[int, str]:
    """One ADT^A01 through the HTTP intake: (message id, the Patient id it produced)."""
    sample = HL7V2_SAMPLES / "ADT-A01-01.hl7"
    if not sample.exists():
        pytest.skip(f"shared HL7 v2 samples not found at {HL7V2_SAMPLES}")
    assert _call(region, admin, "PUT", "/api/ingest/channels/ghh", json=CHANNEL).status_code == 200
    resp = _call(region, admin, "POST", "/api/ingest/channels/ghh/hl7v2",
                 content=sample.read_bytes(),
                 headers={"Content-Type": "x-application/hl7-v2+er7"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    (found,) = region.repo.query("SELECT id FROM ingest_messages")
    (patient,) = [p for (p,) in region.repo.query("SELECT patient FROM ingest_message_patients")
                  if str(p).startswith("Patient/")]  # fmt: skip
    return int(found[0]), str(patient).split("/", 1)[1]


def test_reading_a_message_is_audited_with_its_patients(region: Region) -> None:
    admin = region.user_token(Role.PLATFORM_ADMIN)
    message_id, produced = _message(region, admin)
    # the message also named a patient by identifier only (as a failed one does): the entry
    # names the Patient that carries it, never the identifier itself
    with region.repo.transaction() as tx:
        tx.execute("INSERT INTO ingest_message_patients (message_id, patient) VALUES (?, ?)",
                   (message_id, PA1_IDENTIFIER))  # fmt: skip
        tx.execute("INSERT INTO ingest_message_patients (message_id, patient) VALUES (?, ?)",
                   (message_id, "urn:oid:9.9|nobody-has-this"))  # fmt: skip
        # a system without a value names nobody (not every patient of the system)
        tx.execute("INSERT INTO ingest_message_patients (message_id, patient) VALUES (?, ?)",
                   (message_id, "urn:oid:2.16.156.10011.1.1|"))  # fmt: skip
    assert _entries(region.repo, "message-read") == []

    resp = _call(region, admin, "GET", f"/api/ingest/messages/{message_id}")
    assert resp.status_code == 200 and resp.json()["rawText"].startswith("MSH|")
    (entry,) = _entries(region.repo, "message-read")
    assert entry.patients == tuple(sorted({produced, "pa1"}))
    assert entry.outcome is Outcome.SUCCESS
    assert entry.actor.role == "platform-admin" and entry.actor.user
    assert entry.basis.code == "operator-ingest-messages" and entry.purpose == "HOPERAT"
    assert entry.detail == f"ingest messages {message_id}"
    assert entry.recorded > 0 and entry.request_id
    assert "nobody-has-this" not in repr(entry) and "ID-pa1" not in repr(entry)
    assert to_audit_event(entry)["action"] == "R"

    # the patient can see who read it
    pa1 = region.user_token(Role.PATIENT, patient_ids=("pa1",), scope="user/*.rs")
    mine = _call(region, pa1, "GET", "/api/audit/entries?patient=pa1").json()
    assert "message-read" in {e["action"] for e in mine["entries"]}


def test_a_listing_and_a_reprocess_are_audited(region: Region) -> None:
    admin = region.user_token(Role.PLATFORM_ADMIN)
    message_id, produced = _message(region, admin)

    listed = _call(region, admin, "GET", f"/api/ingest/messages?patient=Patient/{produced}")
    assert listed.status_code == 200 and listed.json()["total"] == 1
    (entry,) = _entries(region.repo, "message-read")
    assert entry.patients == (produced,) and entry.outcome is Outcome.SUCCESS
    assert entry.detail == f"ingest message search {message_id}"
    assert entry.query == f"patient=Patient/{produced}"

    again = _call(region, admin, "POST", f"/api/ingest/messages/{message_id}/reprocess")
    assert again.status_code == 200
    queued = _call(region, admin, "POST", "/api/ingest/reprocess", json={"ids": [message_id]})
    assert queued.json() == {"queued": 1}
    one, many = _entries(region.repo, "message-reprocess")
    assert one.patients == many.patients == (produced,)
    assert one.actor.role == many.actor.role == "platform-admin"
    assert one.detail == many.detail == f"ingest messages {message_id}"


def test_a_missing_message_is_a_failure_entry(region: Region) -> None:
    admin = region.user_token(Role.PLATFORM_ADMIN)
    assert _call(region, admin, "GET", "/api/ingest/messages/424242").status_code == 404
    (entry,) = _entries(region.repo, "message-read")
    assert entry.outcome is Outcome.MINOR_FAILURE and entry.patients == ()
    assert entry.detail == "ingest message 424242"
    # refused callers see nothing and read nothing
    clinician = region.user_token(Role.CLINICIAN, org="org-a")
    assert _call(region, clinician, "GET", "/api/ingest/messages/1").status_code == 403


def test_no_message_leaves_unaudited(region: Region) -> None:
    admin = region.user_token(Role.PLATFORM_ADMIN)
    message_id, _ = _message(region, admin)
    with region.repo.transaction() as tx:
        tx.execute("ALTER TABLE audit_entries RENAME TO audit_entries_away")
    try:
        shown = _call(region, admin, "GET", f"/api/ingest/messages/{message_id}")
        listed = _call(region, admin, "GET", "/api/ingest/messages")
    finally:
        with region.repo.transaction() as tx:
            tx.execute("ALTER TABLE audit_entries_away RENAME TO audit_entries")
    assert shown.status_code >= 500 and "MSH|" not in shown.text
    assert listed.status_code >= 500 and "GHH" not in listed.text
