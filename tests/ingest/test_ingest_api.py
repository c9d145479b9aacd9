"""The operator API at /api/ingest and /metrics, through the real app on both engines."""

from __future__ import annotations

import pytest

from huitong.config import Settings
from huitong.server import create_app
from huitong_testdata import HL7V2_SAMPLES


@pytest.fixture
def api(repo):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
    from server_helpers import Client

    settings = Settings.from_env({}, database_url="unused", auth="off", base_url="http://hie.test/fhir")
    client = Client(create_app(repo, settings))
    yield client
    client.close()


def _sample(name: str) -> bytes:
    path = HL7V2_SAMPLES / name
    if not path.exists():
        pytest.skip(f"shared HL7 v2 samples not found at {HL7V2_SAMPLES}")
    return path.read_bytes()


CHANNEL = {"organization": "Organization/ghh", "transport": "mllp", "format": "hl7v2",
           "sending_facility": "GHHSFacility", "name": "GHH 医院"}


def _put_channel(api) -> None:
    resp = api.put("/api/ingest/channels/ghh", json=CHANNEL)
    assert resp.status_code == 200, resp.text


def test_channel_lifecycle(api):
    _put_channel(api)
    listed = api.get("/api/ingest/channels").json()["channels"]
    assert [(c["id"], c["enabled"], c["name"]) for c in listed] == [("ghh", True, "GHH 医院")]
    assert api.post("/api/ingest/channels/ghh/stop").json()["enabled"] is False
    assert api.post("/api/ingest/channels/ghh/start").json()["enabled"] is True
    missing = api.post("/api/ingest/channels/nope/stop")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("body", "field"),
    [({**CHANNEL, "transport": "pigeon"}, "transport"),
     ({**CHANNEL, "organization": "Patient/1"}, "organization"),
     ({**CHANNEL, "sending_facility": None}, "sending_facility"),
     ({**CHANNEL, "colour": "red"}, "colour"),
     ({**CHANNEL, "id": "other"}, "id")],
)
def test_bad_channel_config_is_a_400_naming_the_field(api, body, field):
    body = {k: v for k, v in body.items() if v is not None}
    resp = api.put("/api/ingest/channels/ghh", json=body)
    assert resp.status_code == 400, resp.text
    text = resp.json()["issue"][0]["diagnostics"]
    assert field in text


def test_hl7v2_over_http_then_search_read_and_reprocess(api):
    _put_channel(api)
    resp = api.post("/api/ingest/channels/ghh/hl7v2", content=_sample("ADT-A01-01.hl7"),
                    headers={"content-type": "x-application/hl7-v2+er7"})
    assert resp.status_code == 200, resp.text
    assert "MSA|AA|MSG00001" in resp.text
    found = api.get("/api/ingest/messages?status=processed&channel=ghh").json()
    assert found["total"] == 1
    message = found["messages"][0]
    assert message["controlId"] == "MSG00001" and message["type"] == "ADT^A01"
    detail = api.get(f"/api/ingest/messages/{message['id']}").json()
    assert detail["rawText"].startswith("MSH|^~\\&|ADTApp")
    patient = next(p for p in detail["produced"] if p.startswith("Patient/"))
    assert sum(p.startswith("Patient/") for p in detail["produced"]) == 1
    assert api.get(f"/fhir/{patient.split('/_history')[0]}").status_code == 200
    by_patient = api.get(f"/api/ingest/messages?patient={patient.split('/_history')[0]}").json()
    assert by_patient["total"] == 1
    again = api.post(f"/api/ingest/messages/{message['id']}/reprocess")
    assert again.status_code == 200 and again.json()["status"] == "processed"
    sources = "/fhir/Patient?_summary=count&_tag:not=urn:huitong:mpi|golden"
    assert api.get(sources).json()["total"] == 1
    assert api.get("/fhir/Patient?_summary=count&_tag=urn:huitong:mpi|golden").json()["total"] == 1


def test_rejected_message_and_bulk_requeue(api):
    _put_channel(api)
    raw = _sample("ADT-A01-01.hl7").replace(b"ADT^A01^ADT_A01", b"QQQ^Q01^QQQ_Q01", 1)
    resp = api.post("/api/ingest/channels/ghh/hl7v2", content=raw)
    assert resp.status_code == 422 and "MSA|AR" in resp.text
    errors = api.get("/api/ingest/messages?status=error").json()
    assert errors["total"] == 1
    queued = api.post("/api/ingest/reprocess", json={"status": "error", "channel": "ghh"})
    assert queued.json() == {"queued": 1}
    assert api.get("/api/ingest/messages?status=queued").json()["total"] == 1


def test_bad_queries_are_400(api):
    assert api.get("/api/ingest/messages?status=lost").status_code == 400
    assert api.get("/api/ingest/messages?since=yesterday").status_code == 400
    assert api.get("/api/ingest/messages/abc").status_code == 404
    assert api.post("/api/ingest/reprocess", content=b"{not json").status_code == 400


def test_stats_and_metrics(api):
    _put_channel(api)
    api.post("/api/ingest/channels/ghh/hl7v2", content=_sample("ADT-A01-01.hl7"))
    buckets = api.get("/api/ingest/stats?since=0").json()["buckets"]
    assert buckets[0]["channel"] == "ghh" and buckets[0]["processed"] == 1
    metrics = api.get("/metrics").text
    assert 'huitong_ingest_messages{channel="ghh",status="processed"} 1' in metrics
