"""Data handed out as a document to keep is an ``export`` entry (IHE BALP Export, DICOM
110106): the data-quality report (CSV, HTML, JSON) and a patient's downloaded proof of an
audit entry. The entry is stored before the document leaves: when it cannot be, the export
is refused (SQLite and PostgreSQL). The server has no FHIR bulk ``$export``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "access_enforcement"))

from enforce_helpers import Region

from huitong.access import Principal, Role
from huitong.audit.auditevent import to_audit_event
from huitong.audit.entry import AuditEntry, parse_entry
from huitong.audit.service import AuditService
from huitong.store import Repository
from huitong.web.audit_proofs import proof_document


@pytest.fixture
def region(repo: Repository) -> Iterator[Region]:
    r = Region(repo)
    yield r
    r.close()


def _exports(repo: Repository) -> list[AuditEntry]:
    rows = repo.query("SELECT entry FROM audit_entries WHERE action = 'export' ORDER BY seq")
    return [parse_entry(bytes(r[0])) for r in rows]


def _get(region: Region, token: str, path: str) -> tuple[int, str]:
    resp = region._loop.run_until_complete(
        region._http.get(path, headers={"Authorization": f"Bearer {token}"})
    )
    return resp.status_code, resp.text


@pytest.mark.parametrize("fmt", ["csv", "html", "json"])
def test_the_quality_report_download_is_an_export(region: Region, fmt: str) -> None:
    admin = region.user_token(Role.PLATFORM_ADMIN)
    status, _ = _get(region, admin, f"/api/quality/report?format={fmt}&org=org-a")
    assert status == 200
    (entry,) = _exports(region.repo)
    assert entry.actor.role == "platform-admin" and entry.actor.user
    assert entry.basis.code == "quality-report" and entry.purpose == "HOPERAT"
    assert entry.detail is not None and f"quality-report {fmt} org=org-a" in entry.detail
    event = to_audit_event(entry)
    assert event["type"]["code"] == "110106" and event["action"] == "E"
    # a refused request exports nothing
    clinician = region.user_token(Role.CLINICIAN, org="org-a")
    assert _get(region, clinician, "/api/quality/report?format=csv")[0] == 403
    assert len(_exports(region.repo)) == 1


def test_no_report_leaves_unrecorded(region: Region) -> None:
    admin = region.user_token(Role.PLATFORM_ADMIN)
    # the audit table cannot take the entry: the report is not sent
    with region.repo.transaction() as tx:
        tx.execute("ALTER TABLE audit_entries RENAME TO audit_entries_away")
    try:
        status, body = _get(region, admin, "/api/quality/report?format=csv")
    finally:
        with region.repo.transaction() as tx:
            tx.execute("ALTER TABLE audit_entries_away RENAME TO audit_entries")
    assert status >= 500 and "org-a" not in body


def test_a_downloaded_proof_is_an_export(region: Region) -> None:
    doctor = region.user_token(Role.CLINICIAN, org="org-a", practitioner="pr-a")
    assert region.get(doctor, "Patient/pa1").status_code == 200
    service = AuditService(region.repo, origin="huitong")
    service.sequence_all()
    (read,) = service.entries(action="read", count=5)
    index = read.index
    assert index is not None
    me = Principal(Role.PATIENT, user_id="me", patient_ids=frozenset({"pa1"}))
    document = proof_document(service, index, me, "127.0.0.1", action="export")
    assert document["entry"]["patients"] == ["pa1"]
    (entry,) = _exports(region.repo)
    assert entry.patients == ("pa1",) and entry.basis.code == "patient-own-access-log"
