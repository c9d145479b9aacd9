"""Reads by id answered on the event loop (server/fast_read.py, store/pg_reads.py).

The fast path exists on PostgreSQL with authentication off. Each test compares it with the
general path on the same database — a query parameter that changes nothing
(``_format=json``) sends a read the general way — so both must give the same bytes,
headers, errors and audit entries. With the audit log on, an entry that cannot be stored
keeps the data from leaving.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from server_helpers import BASE, NOW, Client, assert_outcome

from huitong.audit.entry import AccessBasis, Actor, AuditEntry, BasisKind, Outcome, parse_entry
from huitong.audit.service import AuditService
from huitong.config import Settings
from huitong.server import create_app
from huitong.server.fast_read import AuditAppends
from huitong.store import Repository


def _client(repo: Repository, audit: str = "off") -> Client:
    settings = Settings.from_env(
        {}, database_url="unused", mpi="off", quality="off", auth="off", audit=audit,
        base_url=BASE,
    )  # fmt: skip
    return Client(create_app(repo, settings, clock=lambda: NOW))


@pytest.fixture
def client(pg_repo: Repository) -> Iterator[Client]:
    c = _client(pg_repo)
    yield c
    c.close()


def _fast_reader_used(repo: Repository) -> bool:
    return bool(repo.async_reads()._open)  # type: ignore[attr-defined]


def _same(fast: Any, general: Any) -> None:
    assert fast.status_code == general.status_code
    assert fast.content == general.content
    for name in ("content-type", "content-length", "etag", "last-modified"):
        assert fast.headers.get(name) == general.headers.get(name), name


def _patient(client: Client, pid: str) -> None:
    body = {"resourceType": "Patient", "id": pid, "name": [{"family": "王", "given": ["丽"]}]}
    assert client.put(f"/fhir/Patient/{pid}", json=body).status_code == 201
    body["gender"] = "female"
    assert client.put(f"/fhir/Patient/{pid}", json=body).status_code == 200


def test_read_and_vread_match_the_general_path(client: Client, pg_repo: Repository) -> None:
    _patient(client, "p1")
    fast = client.get("/fhir/Patient/p1")
    assert fast.status_code == 200
    assert fast.json()["gender"] == "female"
    assert fast.json()["meta"]["versionId"] == "2"
    assert fast.headers["etag"] == 'W/"2"'
    assert _fast_reader_used(pg_repo)
    _same(fast, client.get("/fhir/Patient/p1?_format=json"))
    for vid in ("1", "2"):
        old = client.get(f"/fhir/Patient/p1/_history/{vid}")
        assert old.status_code == 200 and old.headers["etag"] == f'W/"{vid}"'
        _same(old, client.get(f"/fhir/Patient/p1/_history/{vid}?_format=json"))
    assert "gender" not in client.get("/fhir/Patient/p1/_history/1").json()


def test_errors_match_the_general_path(client: Client) -> None:
    _patient(client, "gone")
    assert client.delete("/fhir/Patient/gone").status_code in (200, 204)
    for path, status in [
        ("Patient/nobody", 404),
        ("Patient/gone", 410),
        ("Patient/gone/_history/9", 404),
        ("Patient/gone/_history/3", 410),  # the delete's version
        ("Nonsense/x", 404),  # not a resource type: left to the general path
    ]:
        fast = client.get(f"/fhir/{path}")
        assert_outcome(fast, status)
        _same(fast, client.get(f"/fhir/{path}?_format=json"))


def test_requests_the_fast_path_does_not_answer_still_work(client: Client) -> None:
    _patient(client, "p2")
    # conditional read: 304 from the general path
    assert client.get("/fhir/Patient/p2", headers={"if-none-match": 'W/"2"'}).status_code == 304
    # an Accept the server cannot satisfy: 406
    assert_outcome(client.get("/fhir/Patient/p2", headers={"accept": "application/fhir+xml"}),
                   406)  # fmt: skip
    # subsetting
    summary = client.get("/fhir/Patient/p2?_elements=gender").json()
    assert "name" not in summary and summary["gender"] == "female"
    # HEAD: headers only
    head = client.request("HEAD", "/fhir/Patient/p2")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == 'W/"2"'
    # Accept lists that include JSON are served by the fast path
    ok = client.get("/fhir/Patient/p2", headers={"accept": "text/html, application/json;q=0.5"})
    assert ok.status_code == 200 and ok.json()["id"] == "p2"


def test_reads_recover_when_the_database_drops_the_connections(
    client: Client, pg_repo: Repository, postgres_url: str
) -> None:
    _patient(client, "p5")
    assert client.get("/fhir/Patient/p5").status_code == 200
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        dropped = admin.execute(  # waits until the backend has gone
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid <> "
            "pg_backend_pid() AND datname = current_database() "
            "AND query LIKE 'SELECT version, last_updated%'"
        ).fetchall()
    assert dropped  # the reader's connection was there, and is gone
    # A request on the general path lets the event loop see the closed connection...
    assert client.get("/fhir/Patient?_count=1").status_code == 200
    # ...so no read is sent on it: every read opens a new connection and succeeds
    assert [client.get("/fhir/Patient/p5").status_code for _ in range(3)] == [200, 200, 200]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid <> "
            "pg_backend_pid() AND datname = current_database() "
            "AND query LIKE 'SELECT version, last_updated%'"
        )
    # A read caught on a dropped connection is refused (503, never stale data); the next
    # ones open a new connection.
    statuses = [client.get("/fhir/Patient/p5").status_code for _ in range(3)]
    assert statuses[0] in (200, 503) and statuses[1:] == [200, 200]


def _entries(repo: Repository) -> list[AuditEntry]:
    rows = repo.query("SELECT entry FROM audit_entries ORDER BY seq")
    return [parse_entry(bytes(r[0])) for r in rows]


def _comparable(entry: AuditEntry) -> AuditEntry:
    return dataclasses.replace(entry, recorded=0, request_id=None)


def test_audited_reads_record_what_the_general_path_records(pg_repo: Repository) -> None:
    c = _client(pg_repo, audit="on")
    try:
        _patient(c, "p3")
        before = len(_entries(pg_repo))
        assert c.get("/fhir/Patient/p3").status_code == 200  # fast
        assert c.get("/fhir/Patient/p3?_format=json").status_code == 200  # general
        assert c.get("/fhir/Patient/none").status_code == 404  # fast
        assert c.get("/fhir/Patient/none?_format=json").status_code == 404  # general
        assert c.get("/fhir/Patient/p3/_history/1").status_code == 200  # fast
        assert _fast_reader_used(pg_repo)
        fast_ok, general_ok, fast_404, general_404, vread = _entries(pg_repo)[before:]
    finally:
        c.close()
    assert fast_ok.action == "read" and fast_ok.outcome is Outcome.SUCCESS
    assert fast_ok.resources == ("Patient/p3",) and fast_ok.patients == ("p3",)
    assert fast_ok.request_id and fast_ok.request_id != general_ok.request_id
    assert _comparable(fast_ok) == dataclasses.replace(_comparable(general_ok), query=None)
    assert general_ok.query == "_format=json"
    assert fast_404.outcome is Outcome.MINOR_FAILURE and fast_404.detail == "not-found"
    assert fast_404.patients == ("none",)
    assert _comparable(fast_404) == dataclasses.replace(_comparable(general_404), query=None)
    assert vread.action == "vread" and vread.resources == ("Patient/p3",)


def test_no_data_leaves_when_its_audit_entry_cannot_be_stored(
    pg_repo: Repository, postgres_url: str
) -> None:
    c = _client(pg_repo, audit="on")
    try:
        _patient(c, "p4")
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("ALTER TABLE audit_entries RENAME TO audit_entries_away")
            try:
                refused = c.get("/fhir/Patient/p4")
            finally:
                admin.execute("ALTER TABLE audit_entries_away RENAME TO audit_entries")
        assert_outcome(refused, 500)
        assert "王" not in refused.text and "p4" not in refused.text
        assert c.get("/fhir/Patient/p4").status_code == 200  # the log is back
    finally:
        c.close()


def _entry(n: int) -> AuditEntry:
    return AuditEntry(
        recorded=NOW + n, action="read", actor=Actor(role="anonymous"),
        basis=AccessBasis(BasisKind.ROLE, "authentication-off"), request_id=f"r{n}",
        resource_type="Patient", resources=(f"Patient/p{n}",), patients=(f"p{n}", "shared"),
    )  # fmt: skip


def _appends(repo: Repository, path: str) -> AuditAppends:
    """The server's group commit: on PostgreSQL inserted and sequenced on the event loop
    (audit/pg_appends.py); ``thread``: record_many in a worker thread, as other engines."""
    appends = AuditAppends(AuditService(repo, clock=lambda: NOW), ThreadPoolExecutor(2))
    assert appends._pg is not None
    if path == "thread":
        appends._pg = None
    return appends


@pytest.mark.parametrize("path", ["event-loop", "thread"])
def test_group_commit_stores_every_entry_once_with_its_patients(
    pg_repo: Repository, path: str
) -> None:
    appends = _appends(pg_repo, path)

    async def many() -> None:
        await asyncio.gather(*(appends.append(_entry(n)) for n in range(250)))

    asyncio.run(many())
    stored = {e.request_id: e for e in _entries(pg_repo)}
    assert len(stored) == 250
    assert stored["r7"] == _entry(7)
    rows = pg_repo.query(
        "SELECT p.patient_id, e.entry FROM audit_entry_patients p "
        "JOIN audit_entries e ON e.seq = p.seq WHERE p.patient_id IN ('p7', 'shared')"
    )
    assert len(rows) == 251
    assert [parse_entry(bytes(r[1])).request_id for r in rows if r[0] == "p7"] == ["r7"]
    service = AuditService(pg_repo)
    service.sequence_all()
    assert service.size() == 250 and service.verify().ok


@pytest.mark.parametrize("path", ["event-loop", "thread"])
def test_a_failed_group_fails_every_caller(
    pg_repo: Repository, postgres_url: str, path: str
) -> None:
    appends = _appends(pg_repo, path)

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(appends.append(_entry(n)) for n in range(5)), return_exceptions=True
        )

    with psycopg.connect(postgres_url, autocommit=True) as admin:
        # The entry rows insert, their patients cannot: every caller of the group fails.
        admin.execute("ALTER TABLE audit_entry_patients RENAME TO away")
        try:
            results = asyncio.run(many())
        finally:
            admin.execute("ALTER TABLE away RENAME TO audit_entry_patients")
    assert all(isinstance(r, Exception) for r in results)
    assert _entries(pg_repo) == []
    assert pg_repo.query("SELECT COUNT(*) FROM audit_nodes") == [(0,)]


def test_the_audited_reads_connection_closes_with_the_server(pg_repo: Repository) -> None:
    import httpx

    settings = Settings.from_env(
        {}, database_url="unused", mpi="off", quality="off", auth="off", audit="on",
        base_url=BASE,
    )  # fmt: skip
    app = create_app(pg_repo, settings, clock=lambda: NOW)
    appender = app.state.audit_appends._pg
    assert appender is not None

    async def serve_and_stop() -> None:
        async with app.router.lifespan_context(app):  # the server's start and shutdown
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hie.test") as http:
                created = await http.put("/fhir/Patient/p1",
                                         json={"resourceType": "Patient", "id": "p1"})
                assert created.status_code == 201
                assert (await http.get("/fhir/Patient/p1")).status_code == 200  # audited
            assert appender._pipe is not None  # the appender's connection is open
        assert appender._pipe is None  # and shut with the server

    asyncio.run(serve_and_stop())
