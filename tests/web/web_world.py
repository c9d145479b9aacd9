"""The world the web-page tests run in (imported by conftest.py and the tests): one small demo region and a few HL7 v2 messages in a SQLite
repository, served by the real application (FHIR API, ingest API and the pages)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette

from huitong.config import Settings
from huitong.demo import generate_region
from huitong.ingest.channels import channel_from_config
from huitong.server import create_app
from huitong.store import Repository
from huitong.web import WebServices

DEMO_SEED = 7
DEMO_RESIDENTS = 12
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"


class SyncClient:
    """Synchronous requests against an ASGI app (no network), keeping cookies."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://hie.test")

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._client.cookies

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def hl7(*segments: str) -> bytes:
    return "\r".join(segments).encode()


def adt_a01(facility: str, control_id: str, mrn: str, resident_id: str) -> bytes:
    return hl7(
        f"MSH|^~\\&|HIS|{facility}|HUITONG|REGION|20261101083000+0800||ADT^A01^ADT_A01|"
        f"{control_id}|P|2.5|||||CHN|UNICODE UTF-8",
        "EVN|A01|20261101083000+0800",
        f"PID|1||{mrn}^^^{facility}^MR~{resident_id}^^^CHN^NNCHN||王^小明||19900307|M|||"
        "人民路1号^^临江市^安江省^399100^CHN||13812345678^PRN^CP",
        f"PV1|1|I|W1^101^1^{facility}||||D001^李^医生",
    )


@dataclass
class DemoPatient:
    id: str
    name: str
    resident_id: str
    phone: str
    institutions: int
    home_bp: int


@dataclass
class WebWorld:
    app: Starlette
    repo: Repository
    services: WebServices
    patient: DemoPatient
    processed_message: int
    failed_message: int  # unrouted when sent; its channel exists now, so reprocess works
    rejected_message: int  # an unsupported message type: reprocessing keeps it in error


def _pick_patient(bundles: list[dict[str, Any]]) -> DemoPatient:
    """The demo resident with home blood-pressure readings seen at the most institutions."""
    best: DemoPatient | None = None
    for bundle in bundles[1:]:
        resources = [e["resource"] for e in bundle["entry"]]
        (patient,) = [r for r in resources if r["resourceType"] == "Patient"]
        providers = {r["serviceProvider"]["reference"] for r in resources
                     if r["resourceType"] == "Encounter" and "serviceProvider" in r}
        home = sum(1 for r in resources if r["resourceType"] == "Observation" and "device" in r)
        resident = next(i["value"] for i in patient["identifier"]
                        if i.get("system") == RESIDENT_ID_SYSTEM and i.get("use") == "official")
        candidate = DemoPatient(patient["id"], patient["name"][0]["text"], resident,
                                patient["telecom"][0]["value"], len(providers), home)
        if home and (best is None or candidate.institutions > best.institutions):
            best = candidate
    assert best is not None, "the demo region has no resident with a home device"
    return best


def build_world(repo: Repository, residents: int = DEMO_RESIDENTS) -> WebWorld:
    settings = Settings.from_env({}, database_url="unused", auth="off", base_url="http://hie.test/fhir")
    app = create_app(repo, settings)  # with auth off it serves the pages at /app too
    services = WebServices(repo=repo, ingest=app.state.ingest)
    bundles = generate_region(seed=DEMO_SEED, residents=residents)
    client = SyncClient(app)
    try:
        for bundle in bundles:
            resp = client.post("/fhir", content=orjson.dumps(bundle),
                               headers={"content-type": "application/fhir+json"})
            assert resp.status_code == 200, resp.text[:500]
    finally:
        client.close()
    ingest = app.state.ingest
    ingest.put_channel(channel_from_config({
        "id": "county-his", "name": "县医院 HIS", "organization": "Organization/county",
        "transport": "mllp", "format": "hl7v2", "sending_facility": "COUNTY"}))
    processed = ingest.receive_hl7v2(adt_a01("COUNTY", "ADT0001", "MRN0001",
                                             "110101199003071234"))
    failed = ingest.receive_hl7v2(adt_a01("LATELAB", "LATE0001", "L0001",
                                          "110101199003071234"))
    rejected = ingest.receive_hl7v2(adt_a01("COUNTY", "BAD0001", "MRN0002", "1").replace(
        b"ADT^A01^ADT_A01", b"QQQ^Q01^QQQ_Q01", 1))
    assert processed.ack_code == "AA" and failed.ack_code == "AR"
    assert rejected.ack_code == "AR"
    ingest.put_channel(channel_from_config({
        "id": "late-lab", "name": "Late Lab", "organization": "Organization/latelab",
        "transport": "mllp", "format": "hl7v2", "sending_facility": "LATELAB"}))
    assert processed.message and failed.message and rejected.message
    return WebWorld(app, repo, services, _pick_patient(bundles), processed.message.id,
                    failed.message.id, rejected.message.id)


