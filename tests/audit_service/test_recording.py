"""Every FHIR interaction leaves one audit entry with the right action, resources and
patients; a write's entry commits with it and a rolled-back write leaves none (SQLite and
PostgreSQL, authentication off: the anonymous local actor)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from audit_helpers import BASE, client, entries, observation, patient

from fhir_test_client import Client
from huitong.audit.entry import BasisKind, Outcome
from huitong.audit.recording import PLATFORM, AuditRecorder
from huitong.audit.service import AuditService
from huitong.store import Repository


@pytest.fixture
def api(repo: Repository) -> Iterator[Client]:
    c = client(repo)
    yield c
    c.close()


def _seed(api: Client) -> None:
    for pid in ("p1", "p2"):
        assert api.put(f"/fhir/Patient/{pid}", json=patient(pid)).status_code == 201
        r = api.put(f"/fhir/Observation/o-{pid}", json=observation(f"o-{pid}", pid))
        assert r.status_code == 201


@pytest.mark.parametrize(
    ("method", "path", "action", "resources", "patients"),
    [
        ("GET", "Patient/p1", "read", ["Patient/p1"], ["p1"]),
        ("GET", "Observation/o-p1/_history/1", "vread", ["Observation/o-p1"], ["p1"]),
        ("GET", "Observation?status=final", "search-type",
         ["Observation/o-p1", "Observation/o-p2"], ["p1", "p2"]),
        ("GET", "Observation?subject=Patient/p2&_include=Observation:subject", "search-type",
         ["Observation/o-p2", "Patient/p2"], ["p2"]),
        ("GET", "Patient/p1/Observation", "search-type", ["Observation/o-p1"], ["p1"]),
        ("GET", "Observation/o-p1/_history", "history-instance", ["Observation/o-p1"], ["p1"]),
        ("GET", "Patient/p2/$everything", "operation",
         ["Observation/o-p2", "Patient/p2"], ["p2"]),
        ("GET", "Observation?status=cancelled", "search-type", [], []),
    ],
)  # fmt: skip
def test_reads_record_what_was_returned(
    api: Client, repo: Repository, method: str, path: str, action: str,
    resources: list[str], patients: list[str],
) -> None:  # fmt: skip
    _seed(api)
    before = len(entries(repo))
    assert api.request(method, f"/fhir/{path}").status_code == 200
    new = entries(repo)[before:]
    assert len(new) == 1
    e = new[0]
    assert (e.action, list(e.resources), list(e.patients)) == (action, resources, patients)
    assert e.outcome is Outcome.SUCCESS
    assert e.actor.role == "anonymous" and e.basis.code == "authentication-off"


def test_writes_record_in_their_transaction(api: Client, repo: Repository) -> None:
    _seed(api)
    got = [(e.action, e.resources, e.patients) for e in entries(repo)]
    assert got == [
        ("update", ("Patient/p1",), ("p1",)),
        ("update", ("Observation/o-p1",), ("p1",)),
        ("update", ("Patient/p2",), ("p2",)),
        ("update", ("Observation/o-p2",), ("p2",)),
    ]
    r = api.post("/fhir/Observation", json={**observation("x", "p1"), "id": None})
    assert r.status_code == 201
    new_id = r.json()["id"]
    assert api.delete("/fhir/Observation/o-p2").status_code in (200, 204)
    last = entries(repo)[-2:]
    assert [(e.action, e.resources, e.patients) for e in last] == [
        ("create", (f"Observation/{new_id}",), ("p1",)),
        ("delete", ("Observation/o-p2",), ("p2",)),
    ]


def test_transaction_and_batch(api: Client, repo: Repository) -> None:
    _seed(api)
    before = len(entries(repo))
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("t1", "p1"), "request": {"method": "PUT",
                                                          "url": "Observation/t1"}},
        {"resource": observation("t2", "p2"), "request": {"method": "PUT",
                                                          "url": "Observation/t2"}},
        {"request": {"method": "GET", "url": "Patient/p1"}},
    ]}  # fmt: skip
    assert api.post("/fhir", json=tx).status_code == 200
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/p2"}},
        {"resource": observation("b1", "p1"), "request": {"method": "PUT",
                                                          "url": "Observation/b1"}},
    ]}  # fmt: skip
    assert api.post("/fhir", json=batch).status_code == 200
    new = entries(repo)[before:]
    # the transaction: one entry with everything it wrote and read, committed with it
    assert (new[0].action, new[0].resources, new[0].patients) == (
        "transaction",
        ("Observation/t1", "Observation/t2", "Patient/p1"),
        ("p1", "p2"),
    )
    # the batch: its write's transaction carries the read made before it
    assert (new[1].action, new[1].resources, new[1].patients) == (
        "batch",
        ("Observation/b1", "Patient/p2"),
        ("p1", "p2"),
    )
    assert len(new) == 2


def test_rolled_back_write_leaves_no_success_entry(api: Client, repo: Repository) -> None:
    _seed(api)
    before = len(entries(repo))
    bad = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("ok1", "p1"), "request": {"method": "PUT",
                                                           "url": "Observation/ok1"}},
        {"resource": {"resourceType": "Observation", "status": "bogus"},
         "request": {"method": "POST", "url": "Observation"}},
    ]}  # fmt: skip
    assert api.post("/fhir", json=bad).status_code == 400
    new = entries(repo)[before:]
    # only the refusal, naming nothing written: Observation/ok1 never committed
    assert [(e.action, e.outcome, e.resources) for e in new] == [
        ("transaction", Outcome.MINOR_FAILURE, ())
    ]
    assert api.get("/fhir/Observation/ok1").status_code == 404


def test_failed_read_is_recorded_as_failure(api: Client, repo: Repository) -> None:
    assert api.get("/fhir/Patient/nobody").status_code == 404
    (e,) = entries(repo)
    assert (e.action, e.outcome, e.resources, e.patients, e.detail) == (
        "read",
        Outcome.MINOR_FAILURE,
        ("Patient/nobody",),
        ("nobody",),
        "not-found",
    )


def test_metadata_is_not_audited(api: Client, repo: Repository) -> None:
    assert api.get("/fhir/metadata").status_code == 200
    assert entries(repo) == []


def test_writes_without_a_request_use_the_platform_actor(repo: Repository) -> None:
    recorder = AuditRecorder(AuditService(repo), local_base=BASE)
    recorder.install(repo)
    with repo.transaction() as tx:
        tx.update(patient("p9"))
    (e,) = entries(repo)
    assert e.actor == PLATFORM and e.patients == ("p9",)
    assert e.basis.kind is BasisKind.ROLE


def test_read_fails_when_the_audit_cannot_be_written(api: Client, repo: Repository) -> None:
    """No unaudited data leaves: with the audit table gone the read is refused."""
    _seed(api)
    with repo.transaction() as tx:  # the audit table away (restored below: shared DB)
        tx.execute("ALTER TABLE audit_entry_patients RENAME TO audit_entry_patients_away")
    try:
        r = api.get("/fhir/Patient/p1")
        assert r.status_code >= 500
        assert "Test" not in r.text
    finally:
        with repo.transaction() as tx:
            tx.execute("ALTER TABLE audit_entry_patients_away RENAME TO audit_entry_patients")


def test_audit_off_records_nothing(repo: Repository) -> None:
    from audit_helpers import audited_app

    c = Client(audited_app(repo, audit="off"))
    try:
        assert c.put("/fhir/Patient/p1", json=patient("p1")).status_code == 201
        assert c.get("/fhir/Patient/p1").status_code == 200
    finally:
        c.close()
    assert entries(repo) == []
