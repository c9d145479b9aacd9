"""Shared pieces of the quality-service tests: the real app with the quality routes mounted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir_test_client import Client
from huitong.config import Settings
from huitong.quality.ruleset import RuleSet
from huitong.quality.service import QualityService
from huitong.server import create_app
from huitong.server.quality_api import quality_routes
from huitong.store import Repository

# 2024-05-15T04:00:00Z: "now" for every write (the month is 2024-05 in China Standard Time).
NOW = int(datetime(2024, 5, 15, 4, tzinfo=UTC).timestamp() * 1_000_000)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def quality_app(repo: Repository, clock: Clock | None = None) -> tuple[Client, QualityService]:
    """The FHIR server over ``repo`` (identity service on) with quality installed after it and
    its routes mounted the way the lead will mount them."""
    # The app's own quality service off: this one, with the test's clock, takes its place.
    app = create_app(repo, Settings.from_env({}, database_url="unused", auth="off", quality="off"))
    # A region that refuses results dated before birth (shipped as a warning).
    strict = RuleSet.from_config({"region": "test", "rules": {
        "observation.effective-not-before-birth": {"severity": "reject"}}})
    service = QualityService(repo, clock=clock or Clock(), identity=app.state.identity,
                             ruleset=strict)
    service.install()
    app.router.routes.extend(quality_routes(service))
    return Client(app), service


def patient(pid: str = "p1", org: str = "hosp-a", **extra: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "resourceType": "Patient", "id": pid, "gender": "male", "birthDate": "1970-03-05",
        "name": [{"family": "张", "given": ["伟"], "text": "张伟"}],
        "identifier": [{"system": f"urn:huitong:org:{org}:mrn", "value": pid}],
        "telecom": [{"system": "phone", "value": "13800138000"}],
        "managingOrganization": {"reference": f"Organization/{org}"},
    }
    p.update(extra)
    return p


def systolic(value: float, subject: str = "Patient/p1", **extra: Any) -> dict[str, Any]:
    """A final systolic blood-pressure Observation (LOINC 8480-6) taken on 2024-05-14."""
    obs: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6",
                             "display": "Systolic blood pressure"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2024-05-14T09:00:00+08:00",
        "issued": "2024-05-14T09:30:00+08:00",
        "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org",
                          "code": "mm[Hg]"},
    }
    obs.update(extra)
    return obs

