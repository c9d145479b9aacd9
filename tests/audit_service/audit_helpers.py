"""Shared pieces of the audit-service tests: the real app with the audit log on over the
real repository (SQLite and PostgreSQL), and direct reads of the audit tables."""

from __future__ import annotations

from typing import Any

from fhir_test_client import Client
from huitong.audit.entry import AuditEntry, parse_entry
from huitong.config import Settings
from huitong.server import create_app
from huitong.store import Repository

BASE = "http://hie.test/fhir"
NOW = 1_800_000_000_000_000


class StepClock:
    """Microseconds, one tick per call, so entries and versions order by time."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        self.now += 1
        return self.now


def audited_app(repo: Repository, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "auth": "off",
        "mpi": "off",
        "quality": "off",
        "audit": "on",
        "base_url": BASE,
        **overrides,
    }
    settings = Settings.from_env({}, database_url="unused", **values)
    return create_app(repo, settings, clock=StepClock())


def client(repo: Repository) -> Client:
    return Client(audited_app(repo))


def entries(repo: Repository) -> list[AuditEntry]:
    """Every audit entry row in insertion order (sequenced or not)."""
    rows = repo.query("SELECT entry FROM audit_entries ORDER BY seq")
    return [parse_entry(bytes(r[0])) for r in rows]


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Test"}]}


def observation(oid: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"text": "heart rate"},
        "subject": {"reference": f"Patient/{pid}"},
    }
