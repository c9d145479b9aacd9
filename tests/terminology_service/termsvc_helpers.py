"""Shared pieces of the write-path terminology tests: the real app (identity, quality and
translation on, authentication off), a small ATC code system loaded through the repository,
and builders for Patients, MedicationRequests and ingest ConceptMaps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fhir_test_client import Client
from huitong.config import Settings
from huitong.server import create_app
from huitong.store import Repository
from huitong.terminology.institution import ingest_use_context
from huitong.terminology.loaders import load_atc

ATC = "http://www.whocc.no/atc"
ATC_CSV = Path(__file__).parents[1] / "terminology" / "data" / "atc_ddd.csv"
# 2024-05-15T04:00:00Z
NOW = int(datetime(2024, 5, 15, 4, tzinfo=UTC).timestamp() * 1_000_000)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        self.now += 1  # every write a distinct instant, as in life
        return self.now


def drug_system(org: str) -> str:
    return f"urn:huitong:org:{org}:codesystem:drug"


def make_app(repo: Repository, **settings: Any) -> Client:
    values: dict[str, Any] = {"database_url": "unused", "auth": "off"}
    values.update(settings)
    repo.clock = Clock()  # type: ignore[attr-defined]
    return Client(create_app(repo, Settings.from_env({}, **values)))


def load_atc_system(client: Client) -> None:
    cs = load_atc(ATC_CSV, version="2025")
    r = client.put("/fhir/CodeSystem/atc-2025", json={**cs, "id": "atc-2025"})
    assert r.status_code in (200, 201), r.text


def patient(pid: str, org: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "gender": "female",
        "birthDate": "1960-02-01",
        "name": [{"family": "王", "given": ["芳"]}],
        "identifier": [{"system": f"urn:huitong:org:{org}:mrn", "value": pid}],
        "managingOrganization": {"reference": f"Organization/{org}"},
    }


def medication_request(pid: str, org: str, code: str, display: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {
            "coding": [{"system": drug_system(org), "code": code, "display": display}],
            "text": display,
        },
        "authoredOn": "2024-05-14",
    }


def ingest_map(
    map_id: str, scope: str, source: str, pairs: dict[str, str], target: str = ATC
) -> dict[str, Any]:
    """An ingest ConceptMap of ``scope`` (``Organization/<id>`` or ``region``)."""
    return {
        "resourceType": "ConceptMap",
        "id": map_id,
        "url": f"urn:test:cm:{map_id}",
        "status": "active",
        "useContext": [ingest_use_context(scope)],
        "group": [
            {
                "source": source,
                "target": target,
                "element": [
                    {"code": code, "target": [{"code": to, "equivalence": "equivalent"}]}
                    for code, to in pairs.items()
                ],
            }
        ],
    }


def codings(resource: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    return [
        (c.get("system"), c.get("code")) for c in resource["medicationCodeableConcept"]["coding"]
    ]


def write_patients(client: Client, *pairs: tuple[str, str]) -> None:
    for pid, org in pairs:
        r = client.put(f"/fhir/Patient/{pid}", json=patient(pid, org))
        assert r.status_code in (200, 201), r.text
