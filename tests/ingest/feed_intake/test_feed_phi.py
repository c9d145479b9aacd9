"""A feed row the server refuses for an unknown resident ID number: the row report (API
answer and stored message) names the row, the element and the rule, never the number, and
no log record carries it. Both engines."""

from __future__ import annotations

import logging

import orjson
import pytest
from feed_intake_helpers import RESIDENT, Client, feed_app, put_channel, put_organization

UNKNOWN = "11010119990101999X"  # nobody has this resident ID number
KNOWN = "110101196003050012"

MAPPING = {
    "feed": {"name": "lab-json", "batch_size": 50},
    "resource": [{
        "key": "glu", "type": "Observation",
        "identifier": {"system": "urn:huitong:lab:C01", "value": "{id}"},
        "field": [
            {"element": "status", "value": "final"},
            {"element": "code.coding[0]",
             "value": {"system": "http://loinc.org", "code": "2345-7"}},
            {"element": "subject", "target_identifier": {
                "type": "Patient", "system": RESIDENT, "value": "{patient.idcard}"}},
            {"element": "effectiveDateTime", "source": "time", "required": True},
            {"element": "valueQuantity", "source": "value", "unit": "mmol/L",
             "required": True},
        ],
    }],
}


@pytest.fixture
def client(repo):
    c = Client(feed_app(repo))
    put_organization(c)
    yield c
    c.close()


def test_refused_row_report_and_logs_do_not_carry_the_resident_id(client, caplog):
    caplog.set_level(logging.DEBUG)
    put_channel(client, "lab-json", format="json", mapping=MAPPING)
    resp = client.post("/fhir/Patient", content=orjson.dumps({
        "resourceType": "Patient", "identifier": [{"system": RESIDENT, "value": KNOWN}]}),
        headers={"content-type": "application/fhir+json"})
    assert resp.status_code == 201, resp.text
    lines = [orjson.dumps({"id": f"L{i}", "patient": {"idcard": UNKNOWN if i == 2 else KNOWN},
                           "time": f"2024-03-05 08:0{i}", "value": "5.1"}) for i in (1, 2, 3)]
    resp = client.post("/api/ingest/channels/lab-json/file?name=lab.ndjson",
                       content=b"\n".join(lines), headers={"content-type": "text/plain"})
    assert resp.status_code == 201, resp.text
    out = resp.json()
    refused = [p for p in out["report"] if p["reason"] == "refused"]
    assert [(p["row"], p["status"]) for p in refused] == [(2, 412)]
    assert "Patient?identifier=" in refused[0]["en"]  # the rule: a conditional reference
    assert UNKNOWN not in resp.text
    message = client.get(f"/api/ingest/messages/{out['messages'][0]['id']}").json()
    assert UNKNOWN not in orjson.dumps(message["warnings"]).decode()
    for record in caplog.records:
        assert UNKNOWN not in record.getMessage() + (record.exc_text or "")
